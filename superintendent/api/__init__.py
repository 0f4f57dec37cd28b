"""The HTTP API, ``/api/v1``: served by the web app itself (``streamlit run streamlit_app.py``), nothing else to start.

The only package that imports the web framework (FastAPI, on the Starlette
that Streamlit runs on). ``streamlit_app.py`` mounts :func:`routes` beside
Streamlit's own routes, handing over the web app's engine, so the pages and
the API share one connection pool per process.

* :mod:`~superintendent.api.common`: the bearer token, the permission
  answer (:func:`superintendent.auth.can`, :func:`superintendent.queue.may_work_in`),
  errors, cursors;
* :mod:`~superintendent.api.projects`, :mod:`~superintendent.api.labelling`,
  :mod:`~superintendent.api.items`, :mod:`~superintendent.api.runs`,
  :mod:`~superintendent.api.predictions`: the endpoints;
* :mod:`~superintendent.api.docs_page`: readable docs at ``/api/v1/docs``
  (the description itself at ``/api/v1/openapi.json``).

Every endpoint that touches the database is a plain ``def``: Starlette runs
it in its thread pool, so a query never blocks the event loop that serves the
browsers. docs/api-http.md has a curl example for each endpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Engine
from starlette.routing import Mount

from superintendent import tokens
from superintendent.api import common, items, labelling, predictions, projects, runs
from superintendent.api.docs_page import docs_html
from superintendent.config import Settings, get_settings
from superintendent.ingest.prepared import MB
from superintendent.store import init_db, make_engine

PREFIX = "/api/v1"
ENVELOPE_BYTES = 1 * MB  # a multipart body's headers and boundaries, beyond the largest file allowed
DESCRIPTION = ("Label, import, export and retrain over HTTP. Send `Authorization: Bearer <token>` (a personal access token "
               "from the My account page or `superintendent create-token`). Lists return `{data, next_cursor}`: pass "
               "`cursor=<next_cursor>` for the next page. Errors return `{error}` (and `fields` for a bad body).")


@functools.cache
def _own_engine(url: str) -> Engine:
    engine = make_engine(url, busy_timeout_seconds=get_settings().sqlite_busy_timeout_seconds)
    init_db(engine)
    return engine


def _default_engine() -> Engine:
    return _own_engine(get_settings().resolved_database_url())


def create_api(engine: Callable[[], Engine] = _default_engine, settings: Callable[[], Settings] = get_settings) -> FastAPI:
    """The API app; ``engine()`` and ``settings()`` are asked on each request (the web app passes its cached ones)."""
    app = FastAPI(title="superintendent HTTP API", version="1", description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", exception_handlers=common.HANDLERS)
    app.add_middleware(common.BodyLimit, limit=lambda: settings().max_upload_mb * MB + ENVELOPE_BYTES,
                       mb=lambda: settings().max_upload_mb)
    app.state.context = common.Context(engine, settings, tokens.FailedAttempts())
    for module in (projects, labelling, items, runs, predictions):
        app.include_router(module.router)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:  # no database: the description only
        return HTMLResponse(docs_html(app.openapi(), f"{PREFIX}/openapi.json"))

    return app


def routes(engine: Callable[[], Engine] = _default_engine, settings: Callable[[], Settings] = get_settings) -> list[Mount]:
    """The routes to add to the web app: the API mounted at :data:`PREFIX`."""
    return [Mount(PREFIX, app=create_api(engine, settings))]
