"""Users and roles. (Password hashing and lockout come with the web app.)"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from superintendent.store.models import Role, User
from superintendent.validation import ValidationError

IMPORT_USER = "_import"


def ensure_user(session: Session, username: str, *, role: Role = Role.system) -> int:
    """The id of user ``username``, created (without a password, so unable to log in) if missing."""
    if not isinstance(username, str) or not username.strip() or len(username) > 150:
        raise ValidationError(f"a user name must be a non-empty string of at most 150 characters; got {username!r}")
    user_id = session.execute(sa.select(User.id).where(User.username == username)).scalar_one_or_none()
    if user_id is not None:
        return user_id
    # Insert-or-ignore, so two processes creating the same worker at once both succeed.
    table = User.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).values(username=username, role=role.value, display_name=username, email="", active=True,
                                         failed_logins=0, created_at=User().created_at).on_conflict_do_nothing(index_elements=["username"]))
    return session.execute(sa.select(User.id).where(User.username == username)).scalar_one()
