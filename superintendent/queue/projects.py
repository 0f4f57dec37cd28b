"""Projects: create, find, list and change (settings checked by :class:`~superintendent.project_settings.ProjectSettings`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from superintendent.project_settings import ProjectSettings
from superintendent.queue.common import _I, _check_id, _project_gone
from superintendent.store.models import Project, User
from superintendent.validation import NotFoundError, ValidationError


def _name_taken(name: str) -> ValidationError:
    return ValidationError(f"a project named {name!r} exists already; pick another name")


def _check_name_free(session: Session, name: str, project_id: int | None = None) -> None:
    taken = sa.select(Project.id).where(Project.name == name)
    if project_id is not None:
        taken = taken.where(Project.id != project_id)
    if session.execute(taken).first() is not None:
        raise _name_taken(name)


def _by_name(session: Session, name: str) -> Project | None:
    return session.execute(sa.select(Project).where(Project.name == name)).scalar_one_or_none()


def _insert_project(session: Session, checked: ProjectSettings) -> Project | None:
    """Insert the project in a savepoint; None (and nothing written) if a concurrent transaction took the name first.

    The unique index on the name decides: on PostgreSQL the insert waits for
    a concurrent transaction inserting the same name and fails once that one
    commits; only this savepoint is rolled back, the caller's transaction goes on.
    """
    project = Project(**checked.model_dump())
    try:
        with session.begin_nested():
            session.add(project)
            session.flush()
    except sa.exc.IntegrityError:
        if _by_name(session, checked.name) is None:
            raise  # not the name: a constraint we do not know of
        return None
    return project


def create_project(session: Session, name: str, **settings: Any) -> Project:
    """Create a project; raises :class:`ValidationError` for bad or unknown settings or a taken name
    (also when another process creates the same name at the same moment).

    ``settings`` are the fields of :class:`ProjectSettings`; those not given take its defaults.
    """
    checked = ProjectSettings.check(name=name, **settings)
    _check_name_free(session, checked.name)
    project = _insert_project(session, checked)
    if project is None:
        raise _name_taken(checked.name)
    return project


def get_or_create_project(session: Session, name: str, **settings: Any) -> tuple[Project, bool]:
    """The project named ``name``, created with ``settings`` if there is none: ``(project, created)``.

    Race-free: any number of processes may call it for one new name at once;
    one creates the project, the others get that project. ``settings`` are
    checked (:class:`ValidationError`) even when the project exists, and used
    only when it is created.
    """
    checked = ProjectSettings.check(name=name, **settings)
    found = _by_name(session, checked.name)
    if found is not None:
        return found, False
    project = _insert_project(session, checked)
    if project is not None:
        return project, True
    return _by_name(session, checked.name), False  # committed by the one that won (a fresh statement sees it)


def reload_project(session: Session, project: Project) -> Project:
    """``project`` as stored now (settings changed elsewhere are seen); :class:`NotFoundError` naming it if it was deleted."""
    found = session.get(Project, project.id, populate_existing=True)
    if found is None:
        raise _project_gone(project)
    return found


def get_project(session: Session, project: str | int) -> Project:
    """A project by name or id; :class:`NotFoundError` if there is none."""
    if isinstance(project, (int, np.integer)) or not isinstance(project, str):
        found = session.get(Project, _check_id(project, "project"))
    else:
        found = session.execute(sa.select(Project).where(Project.name == project)).scalar_one_or_none()
    if found is None:
        names = session.execute(sa.select(Project.name).order_by(Project.name).limit(20)).scalars().all()
        raise NotFoundError(f"no project {project!r}; projects: {', '.join(names) or 'none yet'}")
    return found


def list_projects(session: Session) -> list[Project]:
    return list(session.execute(sa.select(Project).order_by(Project.name)).scalars())


def update_project(session: Session, project: Project, **changes: Any) -> Project:
    """Change a project's settings: its current settings merged with ``changes``, checked as a whole.

    Raises :class:`ValidationError` (and changes nothing) for a bad or unknown
    setting or a taken name. A new overlap (``annotations_per_item``) re-marks
    which items are finished.
    """
    checked = ProjectSettings.merge(project, changes)
    if checked.name != project.name:
        _check_name_free(session, checked.name, project.id)
    old_k = project.annotations_per_item
    for key, value in checked.model_dump().items():
        if getattr(project, key) != value:
            setattr(project, key, value)
    session.add(project)
    session.flush()
    if project.annotations_per_item != old_k:
        session.execute(sa.update(_I).where(_I.c.project_id == project.id).values(done=_I.c.n_annotations >= project.annotations_per_item))
    return project


def set_archived(session: Session, project: Project, archived: bool) -> Project:
    """Archive a project (hidden from labellers and reviewers, every item and label kept) or bring it back."""
    return update_project(session, project, archived=bool(archived))


def delete_project(session: Session, project: Project, typed_name: str) -> None:
    """Delete a project with its items, labels, model runs and members, once ``typed_name`` is its exact name.

    The typed confirmation is checked here, so no front end can delete a
    project by a slip; :class:`ValidationError` when the name differs.
    """
    if not isinstance(typed_name, str) or typed_name.strip() != project.name:
        raise ValidationError(f"type the project's name, {project.name!r}, to delete it; got {typed_name!r}")
    session.execute(sa.update(User).where(User.last_project_id == project.id).values(last_project_id=None))
    session.execute(sa.delete(Project).where(Project.id == project.id))
    session.flush()
    session.expunge(project)
