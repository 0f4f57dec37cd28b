"""What every endpoint shares: who is calling (the bearer token), which project, error answers, cursors, JSON values.

* :func:`caller` reads ``Authorization: Bearer <token>`` and asks
  :func:`superintendent.tokens.user_for_token` on every request (a revoked
  token, or a deactivated account's, stops at once); an address that sent
  :data:`superintendent.tokens.MAX_FAILURES` bad tokens in a minute gets 429
  with ``Retry-After``.
* :func:`require` asks :func:`superintendent.auth.can` (the one permission
  table) and :func:`project_for` asks :func:`superintendent.queue.may_work_in`
  (the one membership rule): the API keeps no rule of its own.
* Errors are JSON ``{"error": "<one line>"}``, plus ``"fields"`` for a bad
  body (422) and ``"error_id"`` for an unexpected failure (500, logged with
  its traceback here, never sent). :func:`status_of` maps the package's
  exceptions: not found 404, not allowed 403, conflict 409, bad input 422,
  the database away 503.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from fastapi import HTTPException, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import auth, queue, serialization, tokens
from superintendent.config import Settings
from superintendent.store import DatabaseError, Project
from superintendent.validation import ConflictError, NotFoundError, SuperintendentError, ValidationError

log = logging.getLogger(__name__)
PAGE_DEFAULT, PAGE_MAX = 50, 500


@dataclass(frozen=True)
class Context:
    """Where the API gets its engine and settings (``app.state.context``): the web app passes its own, one pool per process."""

    engine: Callable[[], Engine]
    settings: Callable[[], Settings]
    failures: tokens.FailedAttempts


def context(request: Request) -> Context:
    return request.app.state.context


def engine(request: Request) -> Engine:
    return context(request).engine()


# --------------------------------------------------------------------------- errors


class ApiError(HTTPException):
    """An answer other than 2xx, with a one-line message (and headers, e.g. ``Retry-After``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)


def status_of(exc: SuperintendentError) -> int:
    if isinstance(exc, queue.NotAllowedError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, DatabaseError):
        return 503
    return 422


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


TOO_LARGE = "the request body is over the upload limit of {mb} MB (SUPERINTENDENT_MAX_UPLOAD_MB); split the file and send the parts"


class BodyLimit:
    """ASGI middleware: a request body over ``limit()`` bytes gets 413 (JSON) unread (by its Content-Length), or as soon as
    that many bytes came (a body sent in chunks), before an endpoint sees any of it."""

    def __init__(self, app: Any, limit: Callable[[], int], mb: Callable[[], int]) -> None:
        self.app, self.limit, self.mb = app, limit, mb

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit()
        message = TOO_LARGE.format(mb=self.mb())
        length = dict(scope.get("headers", [])).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await JSONResponse(error_body(message), status_code=413, headers={"Connection": "close"})(scope, receive, send)
        received = 0

        async def limited() -> Any:
            nonlocal received
            got = await receive()
            received += len(got.get("body", b"")) if got["type"] == "http.request" else 0
            if received > limit:
                raise ApiError(413, message)
            return got

        await self.app(scope, limited, send)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400 and not isinstance(exc, ApiError):  # the framework could not parse the body
        message = (f"the request body could not be read ({message.rstrip('.')}); send JSON with Content-Type: application/json, "
                   "or a file as multipart/form-data in the field 'file' (curl -F file=@data.csv)")
    return JSONResponse(error_body(message), status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid").removeprefix("Value error, ")} for e in exc.errors()]
    first = fields[0] if fields else {"field": "body", "message": "invalid"}
    return JSONResponse(error_body(f"{first['field']}: {first['message']}", fields=fields), status_code=422)


async def package_error(request: Request, exc: SuperintendentError) -> JSONResponse:
    return JSONResponse(error_body(str(exc)), status_code=status_of(exc))


async def database_away(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return JSONResponse(error_body("the database is not answering right now; try again in a moment"), status_code=503,
                        headers={"Retry-After": "2"})


def unexpected(exc: BaseException) -> JSONResponse:
    error_id = uuid.uuid4().hex[:8]
    log.error("error %s in the HTTP API", error_id, exc_info=(type(exc), exc, exc.__traceback__))
    return JSONResponse(error_body(f"something went wrong on the server (error id {error_id}); it is logged there",
                                   error_id=error_id), status_code=500)


HANDLERS: dict[Any, Callable[..., Any]] = {
    StarletteHTTPException: http_error, RequestValidationError: bad_body, SuperintendentError: package_error,
    sa.exc.OperationalError: database_away, sa.exc.InterfaceError: database_away,
}


class Route(APIRoute):
    """A route whose unexpected failures become a one-line 500 with an error id (logged), never a traceback."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def guarded(request: Request):  # noqa: ANN202
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - the known kinds go to their handlers; the rest are logged here
                if isinstance(exc, tuple(HANDLERS)):
                    raise
                return unexpected(exc)

        return guarded


# --------------------------------------------------------------------------- who is calling


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def caller(request: Request) -> tokens.TokenUser:
    """The user the request's bearer token acts as now; 401 without a good token, 429 after too many bad ones."""
    failures = context(request).failures
    address = _address(request)
    if (wait := failures.retry_after(address)) is not None:
        raise ApiError(429, f"too many requests with a bad token from this address; try again in {wait} s",
                       headers={"Retry-After": str(wait)})
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "send a token: 'Authorization: Bearer sp_...' (create one on the My account page, "
                            "or with `superintendent create-token USER`)", headers={"WWW-Authenticate": "Bearer"})
    user = tokens.user_for_token(engine(request), token.strip())
    if user is None:
        failures.fail(address)
        raise ApiError(401, "this token is unknown, revoked or expired, or its account may not sign in now",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return user


def require(user: tokens.TokenUser, action: str) -> None:
    """403 unless the user's role may do ``action`` (:func:`superintendent.auth.can`)."""
    if not auth.can(user.role, action):
        raise ApiError(403, f"a {user.role} may not do this ({action.replace('_', ' ')}); ask an admin")


def project_for(session: Session, user: tokens.TokenUser, project_id: int, *, check_member: bool = True) -> Project:
    """The project, if the user may work in it: 404 if there is none, 403 if they are no member (or it is archived)."""
    try:
        project = queue.get_project(session, project_id)
    except NotFoundError:
        raise ApiError(404, f"no project with id {project_id}") from None  # not the queue's message: it names other projects
    if check_member:
        queue.check_may_work_in(session, user.user_id, project.id)
    return project


# --------------------------------------------------------------------------- cursors and values


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


BAD_CURSOR = "cursor: not a cursor this API gave for this list; pass the next_cursor of the previous page"


def decode_cursor(cursor: str | None, shape: Callable[[Any], bool] = lambda _: True) -> Any:
    """The position a cursor from an earlier page names (None: the first page); 422 for one that is not ours
    (does not decode, or fails ``shape``)."""
    if cursor is None or cursor == "":
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError(BAD_CURSOR) from None
    if not shape(position):
        raise ValidationError(BAD_CURSOR)
    return position


def is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def page(rows: list[Any], limit: int, position: Callable[[Any], Any]) -> dict[str, Any]:
    """``{"data": rows[:limit], "next_cursor": ...}``; ``rows`` holds one row more than ``limit`` if there is a next page."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": rows, "next_cursor": encode_cursor(position(rows[-1])) if more and rows else None}


def jsonable(value: Any) -> Any:
    """A stored value (item data, a label) as plain JSON: arrays become lists, NaN null; other non-JSON values their
    tagged JSON form (:mod:`superintendent.serialization`)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return serialization.encode(value)
