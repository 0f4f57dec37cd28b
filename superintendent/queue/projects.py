"""Projects: create, find, list and change (settings checked in :mod:`superintendent.validation`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent.queue.common import _I
from superintendent.store.models import Project
from superintendent.validation import NotFoundError, ValidationError, check_project_settings


def create_project(session: Session, name: str, **settings: Any) -> Project:
    """Create a project; raises :class:`ValidationError` for bad settings or a taken name."""
    checked_keys = {"options", "label_mode", "acquisition_function", "shuffle_prop", "annotations_per_item",
                    "lease_seconds", "retrain_interval_seconds", "retrain_interval_n_labels"}
    checked = check_project_settings(name=name, **{k: v for k, v in settings.items() if k in checked_keys})
    if session.execute(sa.select(Project.id).where(Project.name == checked["name"])).first() is not None:
        raise ValidationError(f"a project named {checked['name']!r} exists already; pick another name")
    other = {k: v for k, v in settings.items() if k not in checked_keys}
    unknown = set(other) - set(Project.model_fields)
    if unknown:
        raise ValidationError(f"unknown project settings: {', '.join(sorted(unknown))}")
    project = Project(**checked, **other)
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, project: str | int) -> Project:
    """A project by name or id; :class:`NotFoundError` if there is none."""
    if isinstance(project, int):
        found = session.get(Project, project)
    else:
        found = session.execute(sa.select(Project).where(Project.name == project)).scalar_one_or_none()
    if found is None:
        names = session.execute(sa.select(Project.name).order_by(Project.name).limit(20)).scalars().all()
        raise NotFoundError(f"no project {project!r}; projects: {', '.join(names) or 'none yet'}")
    return found


def list_projects(session: Session) -> list[Project]:
    return list(session.execute(sa.select(Project).order_by(Project.name)).scalars())


def update_project(session: Session, project: Project, **changes: Any) -> Project:
    """Change a project's settings (checked as on creation); a new overlap re-marks finished items."""
    current = {k: getattr(project, k) for k in ("name", "options", "label_mode", "acquisition_function", "shuffle_prop",
                                                 "annotations_per_item", "lease_seconds", "retrain_interval_seconds",
                                                 "retrain_interval_n_labels")}
    checked_keys = set(current)
    merged = {**current, **{k: v for k, v in changes.items() if k in checked_keys}}
    checked = check_project_settings(**merged)
    if checked["name"] != project.name and session.execute(sa.select(Project.id).where(Project.name == checked["name"])).first():
        raise ValidationError(f"a project named {checked['name']!r} exists already; pick another name")
    other = {k: v for k, v in changes.items() if k not in checked_keys}
    unknown = set(other) - set(Project.model_fields)
    if unknown:
        raise ValidationError(f"unknown project settings: {', '.join(sorted(unknown))}")
    old_k = project.annotations_per_item
    for key, value in {**checked, **other}.items():
        setattr(project, key, value)
    session.add(project)
    session.flush()
    if project.annotations_per_item != old_k:
        session.execute(sa.update(_I).where(_I.c.project_id == project.id).values(done=_I.c.n_annotations >= project.annotations_per_item))
    return project
