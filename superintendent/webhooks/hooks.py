"""A project's webhooks: create, list, change, pause, resume, delete; and the delivery log.

Every statement on ``sp_webhook`` outside the worker's bookkeeping is here.
Functions take a session and flush; the caller owns the transaction (the
Admin page runs them through ``app.guard.guarded_action``). The secret is
made here and returned once, by :func:`create_hook`; pages never show it again.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session

from superintendent.store.models import Project, Webhook, WebhookDelivery
from superintendent.validation import NotFoundError, ValidationError
from superintendent.webhooks.events import EVENTS, Status

MAX_URL_CHARS = 2000
LOG_ROWS = 50
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class HookView:
    """A hook as pages and the API show it: everything but the secret."""

    id: int
    project_id: int
    url: str
    events: tuple[str, ...]
    active: bool
    failures: int
    paused_at: dt.datetime | None
    paused_reason: str | None
    created_at: dt.datetime | None

    @property
    def state(self) -> str:
        if self.paused_at is not None:
            return "paused (failing)"
        return "active" if self.active else "paused"


@dataclass(frozen=True)
class CreatedHook:
    """A new hook and its secret: the only time the secret is handed out."""

    hook: HookView
    secret: str


def _view(hook: Webhook) -> HookView:
    return HookView(hook.id, hook.project_id, hook.url, tuple(json.loads(hook.events)), hook.active, hook.failures,
                    hook.paused_at, hook.paused_reason, hook.created_at)


def check_url(url: str) -> str:
    """The hook's URL, stripped: ``http://`` or ``https://`` with a host, at most 2,000 characters."""
    url = (url or "").strip()
    if not url:
        raise ValidationError("the webhook URL is empty; give the address that receives the POSTs, such as https://example.com/hooks/labels")
    if len(url) > MAX_URL_CHARS:
        raise ValidationError(f"the webhook URL is {len(url):,} characters long; at most {MAX_URL_CHARS:,} are allowed")
    if any(c.isspace() for c in url):
        raise ValidationError("the webhook URL contains spaces; percent-encode them (%20) or remove them")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise ValidationError(f"the webhook URL {url!r} cannot be read ({exc}); write it as https://host[:port]/path") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(f"the webhook URL must start with http:// or https://; got {url!r}")
    if not parts.hostname:
        raise ValidationError(f"the webhook URL {url!r} names no host; write it as https://host[:port]/path")
    if parts.username or parts.password:
        raise ValidationError("the webhook URL holds a user name or password; take them out (the signature proves who sends)")
    return url


def check_events(events: Iterable[str]) -> list[str]:
    """The chosen event names, known ones only, in the documented order; at least one."""
    chosen = {str(e).strip() for e in events}
    unknown = sorted(chosen - set(EVENTS))
    if unknown:
        raise ValidationError(f"unknown webhook event {', '.join(map(repr, unknown))}; choose from {', '.join(EVENTS)}")
    if not chosen:
        raise ValidationError(f"choose at least one event for the webhook ({', '.join(EVENTS)})")
    return [e for e in EVENTS if e in chosen]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _get(session: Session, project: Project, hook_id: int) -> Webhook:
    hook = session.get(Webhook, hook_id, with_for_update=True)
    if hook is None or hook.project_id != project.id:
        raise NotFoundError(f"webhook {hook_id} is not a webhook of project {project.name!r} (it may have been deleted); reload the page")
    return hook


def create_hook(session: Session, project: Project, url: str, events: Iterable[str], *, created_by: int | None = None) -> CreatedHook:
    """A new active hook of ``project``; returns it with its secret (shown once)."""
    hook = Webhook(project_id=project.id, url=check_url(url), events=json.dumps(check_events(events)), secret=new_secret(),
                   created_by=created_by)
    session.add(hook)
    session.flush()
    return CreatedHook(_view(hook), hook.secret)


def list_hooks(session: Session, project: Project) -> list[HookView]:
    rows = session.execute(sa.select(Webhook).where(Webhook.project_id == project.id).order_by(Webhook.id)).scalars()
    return [_view(h) for h in rows]


def update_hook(session: Session, project: Project, hook_id: int, *, url: str | None = None, events: Iterable[str] | None = None,
                active: bool | None = None) -> HookView:
    """Change a hook's URL, events or whether it is active (an admin's pause). Making it active also resumes a hook the
    worker paused for failing, and starts its count of failures again."""
    hook = _get(session, project, hook_id)
    if url is not None:
        hook.url = check_url(url)
    if events is not None:
        hook.events = json.dumps(check_events(events))
    if active is not None:
        hook.active = bool(active)
        if active:
            hook.paused_at, hook.paused_reason, hook.failures = None, None, 0
    session.add(hook)
    session.flush()
    return _view(hook)


def pause_hook(session: Session, project: Project, hook_id: int) -> HookView:
    """An admin's pause: nothing is enqueued or sent for the hook until it is resumed."""
    return update_hook(session, project, hook_id, active=False)


def resume_hook(session: Session, project: Project, hook_id: int) -> HookView:
    """Active again; deliveries still pending (kept while it was paused) are sent by the worker's next round."""
    return update_hook(session, project, hook_id, active=True)


def delete_hook(session: Session, project: Project, hook_id: int) -> None:
    """The hook and its delivery log are deleted."""
    session.delete(_get(session, project, hook_id))
    session.flush()


@dataclass(frozen=True)
class DeliveryView:
    """One row of the delivery log."""

    id: int
    webhook_id: int
    url: str
    event: str
    event_id: str
    status: str
    attempts: int
    response_code: int | None
    last_error: str | None
    created_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


def recent_deliveries(session: Session, project: Project, limit: int = LOG_ROWS) -> list[DeliveryView]:
    """The project's last ``limit`` deliveries (every hook), newest first."""
    d, h = WebhookDelivery.__table__, Webhook.__table__
    rows = session.execute(
        sa.select(d.c.id, d.c.webhook_id, h.c.url, d.c.event, d.c.event_id, d.c.status, d.c.attempts, d.c.response_code,
                  d.c.last_error, d.c.created_at, d.c.last_attempt_at, d.c.next_attempt_at, d.c.delivered_at)
        .join(h, h.c.id == d.c.webhook_id).where(h.c.project_id == project.id).order_by(d.c.id.desc()).limit(limit))
    return [DeliveryView(*row) for row in rows]


def pending_count(session: Session, project: Project) -> int:
    d, h = WebhookDelivery.__table__, Webhook.__table__
    return session.execute(sa.select(sa.func.count()).select_from(d.join(h, h.c.id == d.c.webhook_id))
                           .where(h.c.project_id == project.id, d.c.status == Status.pending.value)).scalar_one()
