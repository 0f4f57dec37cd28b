"""Model runs: list, latest, and "retrain now" (admins), which starts the retrain in the background as the Model page does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from superintendent.api.common import Route, PAGE_DEFAULT, PAGE_MAX, ApiError, caller, decode_cursor, engine, is_id, page, project_for, require
from superintendent.api.schemas import RunOut, RunPage
from superintendent.learning import model_for_project
from superintendent.learning.presets import has_in_app_model
from superintendent.learning.runs import latest_run, latest_runs
from superintendent.retrain_requests import request_retrain
from superintendent.store import session_scope
from superintendent.tokens import TokenUser

router = APIRouter(tags=["model runs"], route_class=Route)
Caller = Annotated[TokenUser, Depends(caller)]


@router.get("/projects/{project_id}/runs", response_model=RunPage, summary="The project's model runs, newest first")
def runs(request: Request, project_id: int, user: Caller, cursor: str | None = None,
         limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT) -> dict:
    require(user, "view_model")
    skip = decode_cursor(cursor, is_id) or 0
    eng = engine(request)
    with session_scope(eng, write=False) as s:
        project = project_for(s, user, project_id)
    rows = latest_runs(eng, project, limit=skip + limit + 1)[skip:]
    return page([RunOut.of(r) for r in rows], limit, lambda _: skip + limit)


@router.get("/projects/{project_id}/runs/latest", response_model=RunOut, summary="The newest model run")
def latest(request: Request, project_id: int, user: Caller) -> RunOut:
    """404 if the project has no run yet."""
    require(user, "view_model")
    with session_scope(engine(request), write=False) as s:
        run = latest_run(s, project_for(s, user, project_id))
    if run is None:
        raise ApiError(404, "this project has no model run yet")
    return RunOut.of(run)


@router.post("/projects/{project_id}/runs", status_code=202, summary="Retrain now (admins)",
             responses={409: {"description": "A retrain of this project is running already"}})
def retrain(request: Request, project_id: int, user: Caller) -> dict:
    """Starts a retrain in the background and answers at once; follow it with ``GET .../runs/latest``.
    422 if the project has no model (set a model preset first)."""
    require(user, "retrain")
    eng = engine(request)
    with session_scope(eng, write=False) as s:
        project = project_for(s, user, project_id)
    if model_for_project(project) is None or not has_in_app_model(project):
        raise ApiError(422, f"project {project.name!r} has no model of its own (a preset that suits its kind, or a factory); "
                            "set one on the Admin page (or PATCH the project's model_preset)")
    started = request_retrain(eng, project, requested_by=user.username)
    if started.job is None:
        by = f" (started by {started.running.by})" if started.running is not None and started.running.by else ""
        raise ApiError(409, f"a retrain of this project is running already{by}; its result appears in GET .../runs/latest")
    return {"started": True, "project_id": project.id}
