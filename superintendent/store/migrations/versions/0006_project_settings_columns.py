"""Project settings become columns: display_columns, model_columns and diversity_window leave the schema-less settings JSON, which goes.

The values are copied row by row in Python (the same code on SQLite and
PostgreSQL, and a project has few rows); a value the new column cannot hold
(e.g. a diversity_window that is not a whole number of at least 1, which the
retrain refused anyway) is dropped with a warning, as is any other key.

SQLite: the column is dropped in place (``ALTER TABLE ... DROP COLUMN``,
SQLite 3.35 or newer), never by a batch "move and copy": that drops
sp_project, and with foreign keys on (superintendent's connections always
have them on) dropping it deletes every item, annotation and model run.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
import logging
from typing import Any

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

MOVED = ('display_columns', 'model_columns', 'diversity_window')
log = logging.getLogger('alembic.runtime.migration')


def _project_table() -> sa.TableClause:
    return sa.table('sp_project', sa.column('id', sa.Integer()), sa.column('settings', sa.JSON()),
                    sa.column('display_columns', sa.JSON(none_as_null=True)), sa.column('model_columns', sa.JSON(none_as_null=True)),
                    sa.column('diversity_window', sa.Integer()))


def _columns(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        return value
    return None


def _window(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


def _moved_values(project_id: int, settings: Any) -> dict[str, Any]:
    settings = settings if isinstance(settings, dict) else {}
    values = {'display_columns': _columns(settings.get('display_columns')), 'model_columns': _columns(settings.get('model_columns')),
              'diversity_window': _window(settings.get('diversity_window'))}
    for key, value in settings.items():
        if key not in MOVED or (value is not None and values[key] is None):
            log.warning("project %s: setting %s=%r dropped (not a setting a project has, or not a value it can take)", project_id, key, value)
    return {k: v for k, v in values.items() if v is not None}


def _check_sqlite_can_drop_columns() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    version = bind.exec_driver_sql('SELECT sqlite_version()').scalar()
    if tuple(int(part) for part in version.split('.')[:2]) < (3, 35):
        raise RuntimeError(f"this upgrade needs SQLite 3.35 or newer (ALTER TABLE ... DROP COLUMN); Python here uses SQLite {version}. "
                           "Nothing was changed: upgrade SQLite (or use a Python built with a newer one) and run `superintendent init` again.")


def upgrade() -> None:
    _check_sqlite_can_drop_columns()
    with op.batch_alter_table('sp_project') as batch_op:  # adding columns only: no table copy on SQLite
        batch_op.add_column(sa.Column('display_columns', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('model_columns', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('diversity_window', sa.Integer(), nullable=True))
    bind = op.get_bind()
    project = _project_table()
    for project_id, settings in bind.execute(sa.select(project.c.id, project.c.settings).order_by(project.c.id)).all():
        values = _moved_values(project_id, settings)
        if values:
            bind.execute(project.update().where(project.c.id == project_id).values(**values))
    op.drop_column('sp_project', 'settings')


def downgrade() -> None:
    _check_sqlite_can_drop_columns()
    with op.batch_alter_table('sp_project') as batch_op:
        batch_op.add_column(sa.Column('settings', sa.JSON(), nullable=False, server_default='{}'))
    bind = op.get_bind()
    project = _project_table()
    rows = bind.execute(sa.select(project.c.id, *(project.c[k] for k in MOVED)).order_by(project.c.id)).all()
    for project_id, *values in rows:
        settings = {k: v for k, v in zip(MOVED, values) if v is not None}
        if settings:
            bind.execute(project.update().where(project.c.id == project_id).values(settings=settings))
    for column in reversed(MOVED):
        op.drop_column('sp_project', column)
