"""Projects: list (those the caller may see), get, progress; create and update (admins), checked by ProjectSettings."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from superintendent import audit, queue
from superintendent.api.common import Route, PAGE_DEFAULT, PAGE_MAX, ApiError, caller, decode_cursor, engine, is_id, page, project_for, require
from superintendent.api.schemas import ProgressOut, ProjectOut, ProjectPage
from superintendent.project_settings import ProjectSettings
from superintendent.store import session_scope
from superintendent.tokens import TokenUser

router = APIRouter(tags=["projects"], route_class=Route)
Caller = Annotated[TokenUser, Depends(caller)]
NOT_BY_API = ("model_factory",)  # code that runs on the server: set with `superintendent create-project --model-factory`
SETTINGS_EXAMPLE = {"name": "pets", "options": ["cat", "dog"], "data_type": "text"}


def _checked(values: dict[str, Any]) -> None:
    """422 with one entry per bad setting (ProjectSettings' own checks), before anything is written."""
    refused = [name for name in NOT_BY_API if name in values]
    if refused:
        raise ApiError(422, f"{', '.join(refused)} cannot be set over HTTP (it is code run on the server); "
                            "use `superintendent create-project --model-factory`")
    try:
        ProjectSettings(**values)
    except pydantic.ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) from None


@router.get("/projects", response_model=ProjectPage, summary="The projects you may work in")
def list_projects(request: Request, user: Caller, cursor: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT) -> dict:
    """Admins see every project; labellers and reviewers the projects they are members of (and open ones), not archived."""
    after = decode_cursor(cursor, lambda c: isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and is_id(c[1]))
    with session_scope(engine(request), write=False) as s:
        projects = queue.visible_projects(s, user.user_id, user.role)
    if after is not None:
        projects = [p for p in projects if (p.name, p.id) > tuple(after)]
    return page([ProjectOut.of(p) for p in projects[:limit + 1]], limit, lambda p: [p.name, p.id])


@router.get("/projects/{project_id}", response_model=ProjectOut, summary="One project's settings")
def get_project(request: Request, project_id: int, user: Caller) -> ProjectOut:
    with session_scope(engine(request), write=False) as s:
        return ProjectOut.of(project_for(s, user, project_id))


@router.get("/projects/{project_id}/progress", response_model=ProgressOut, summary="How far the project is")
def progress(request: Request, project_id: int, user: Caller) -> ProgressOut:
    require(user, "view_progress")
    with session_scope(engine(request), write=False) as s:
        got = queue.progress(s, project_for(s, user, project_id))
    return ProgressOut(total=got.total, labelled=got.labelled, remaining=got.remaining, n_annotations=got.n_annotations,
                       per_class=got.per_class, per_user=got.per_user)


@router.post("/projects", response_model=ProjectOut, status_code=201, summary="Create a project (admins)")
def create_project(request: Request, user: Caller,
                   settings: Annotated[dict[str, Any], Body(examples=[SETTINGS_EXAMPLE])]) -> ProjectOut:
    """The body holds the settings (``name`` is required; see ProjectSettings in docs/concepts.md for each)."""
    require(user, "manage_projects")
    _checked(settings)
    with session_scope(engine(request)) as s:
        project = queue.create_project(s, settings.get("name"), **{k: v for k, v in settings.items() if k != "name"})
        audit.record(s, user.username, audit.AuditAction.project_create, project.name, via="api", **settings)
    return ProjectOut.of(project)


@router.patch("/projects/{project_id}", response_model=ProjectOut, summary="Change a project's settings (admins)")
def update_project(request: Request, project_id: int, user: Caller,
                   changes: Annotated[dict[str, Any], Body(examples=[{"options": ["cat", "dog", "bird"]}])]) -> ProjectOut:
    """Only the settings given change; the project's settings with the changes are checked as a whole."""
    require(user, "manage_projects")
    with session_scope(engine(request)) as s:
        project = queue.get_project(s, project_id)
        _checked({**{name: getattr(project, name) for name in ProjectSettings.model_fields if name not in NOT_BY_API}, **changes})
        project = queue.update_project(s, project, **changes)
        audit.record(s, user.username, audit.AuditAction.project_update, project.name, via="api", changed=sorted(changes))
    return ProjectOut.of(project)
