"""Who works in which project: members (labellers and reviewers), the projects a user sees, and their last project.

:func:`may_work_in` is the one answer to "may this user work in this
project": admins work in every project; a labeller or reviewer only in a
project they are a member of that is not archived. The pages' project
picker lists :func:`visible_projects`, and :func:`check_may_work_in` (raising
:class:`NotAllowedError`) guards every claim and submit on the server.
A project without any member is open to every labeller and reviewer
(:data:`OPEN_WHEN_NO_MEMBERS`): projects made before members existed, and
the demo, keep working; the first member an admin adds closes it to the rest.
Functions take a session and only flush: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session

from superintendent.queue.common import _check_id
from superintendent.queue.history import NotAllowedError
from superintendent.store.models import Project, ProjectMember, Role, User

OPEN_WHEN_NO_MEMBERS = True  # False: a project without members is seen by admins only

__all__ = ["add_members", "check_may_work_in", "last_project_id", "may_work_in", "member_ids", "remove_members",
           "remember_last_project", "visible_projects"]


def _role_and_project(session: Session, user_id: int, project_id: int) -> tuple[str | None, bool | None]:
    user_id = _check_id(user_id, "user")
    row = session.execute(sa.select(User.role, User.active).where(User.id == user_id)).first()
    archived = session.execute(sa.select(Project.archived).where(Project.id == project_id)).scalar_one_or_none()
    if row is None or not row.active:
        return None, archived
    return row.role, archived


def may_work_in(session: Session, user_id: int, project_id: int) -> bool:
    """Whether the user may see, claim and label in the project (two indexed reads).

    Admins (and the system user that imports labels) may work in every
    project, archived or not; labellers and reviewers only in projects they
    are members of and that are not archived.
    """
    role, archived = _role_and_project(session, user_id, project_id)
    if role is None or archived is None:
        return False
    if role in (Role.admin.value, Role.system.value):
        return True
    if archived:
        return False
    members = sa.select(ProjectMember.user_id).where(ProjectMember.project_id == project_id)
    if session.execute(members.where(ProjectMember.user_id == user_id)).first() is not None:
        return True
    return OPEN_WHEN_NO_MEMBERS and session.execute(members.limit(1)).first() is None


def check_may_work_in(session: Session, user_id: int, project_id: int) -> None:
    """Raise :class:`NotAllowedError` unless :func:`may_work_in`; call it before a claim or submit."""
    if not may_work_in(session, user_id, project_id):
        raise NotAllowedError("you are not a member of this project (or it was archived); ask an admin to add you")


def visible_projects(session: Session, user_id: int, role: str) -> list[Project]:
    """The projects a user's project picker lists, by name: every one for admins, else their non-archived memberships."""
    query = sa.select(Project).order_by(Project.name)
    if role != Role.admin.value:
        mine = Project.id.in_(sa.select(ProjectMember.project_id).where(ProjectMember.user_id == user_id))
        if OPEN_WHEN_NO_MEMBERS:
            mine = sa.or_(mine, ~sa.exists().where(ProjectMember.project_id == Project.id))
        query = query.where(mine, sa.not_(Project.archived))
    return list(session.execute(query).scalars())


def member_ids(session: Session, project_id: int) -> list[int]:
    """The ids of a project's members."""
    query = sa.select(ProjectMember.user_id).where(ProjectMember.project_id == project_id).order_by(ProjectMember.user_id)
    return list(session.execute(query).scalars())


def add_members(session: Session, project_id: int, user_ids: Iterable[int]) -> list[int]:
    """Make users members of a project; returns the ids newly added (existing members are left alone)."""
    have = set(member_ids(session, project_id))
    new = sorted({_check_id(u, "user") for u in user_ids} - have)
    for user_id in new:
        session.add(ProjectMember(project_id=project_id, user_id=user_id))
    session.flush()
    return new


def remove_members(session: Session, project_id: int, user_ids: Iterable[int]) -> list[int]:
    """End users' membership of a project; returns the ids removed. Their labels stay."""
    gone = sorted({_check_id(u, "user") for u in user_ids} & set(member_ids(session, project_id)))
    if gone:
        session.execute(sa.delete(ProjectMember).where(ProjectMember.project_id == project_id, ProjectMember.user_id.in_(gone)))
        session.flush()
    return gone


def remember_last_project(session: Session, user_id: int, project_id: int) -> None:
    """Store the project a user works in now; the Label page opens on it next time (any browser, after a reload)."""
    session.execute(sa.update(User).where(User.id == user_id, sa.or_(User.last_project_id.is_(None), User.last_project_id != project_id))
                    .values(last_project_id=project_id))


def last_project_id(session: Session, user_id: int) -> int | None:
    return session.execute(sa.select(User.last_project_id).where(User.id == user_id)).scalar_one_or_none()
