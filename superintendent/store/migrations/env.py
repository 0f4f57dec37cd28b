"""Alembic environment: always run with a connection handed in by superintendent.store.db.init_db."""

from alembic import context
from sqlmodel import SQLModel

import superintendent.store.models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `superintendent init` (superintendent.store.init_db), which hands Alembic a connection")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
