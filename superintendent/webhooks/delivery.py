"""The delivery worker: send the outbox's due rows, sign them, retry with backoff, pause hooks that keep failing.

:func:`deliver_due` is one round, called by the scheduler every
``webhook_tick_seconds`` (:func:`add_delivery_job`) and by tests directly:

1. **Take** up to ``limit`` due rows in one short write transaction: pending,
   ``next_attempt_at`` come, the hook active and not paused. One ``UPDATE ...
   WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``, which counts the
   attempt and moves ``next_attempt_at`` past the round (a lease): two workers
   never take the same row (PostgreSQL skips locked rows; SQLite runs one
   writer at a time), and a row whose worker died is taken again after the lease.
2. **Send** each outside any transaction (a slow receiver holds no lock):
   POST with a timeout and the headers ``X-Superintendent-Event``,
   ``X-Superintendent-Delivery`` (the event id, for the receiver to
   de-duplicate) and ``X-Superintendent-Signature: t=<unix time>,v1=<hex
   HMAC-SHA256 of "<t>.<body>">``. A 2xx answer is success; anything else
   (another status, a redirect, a timeout, a refused connection) a failure.
3. **Record** the outcomes in one transaction: ``delivered``; or the next try
   after ``webhook_retry_seconds[attempt - 1]`` (with +-20 % jitter); or, once
   the schedule is spent, ``failed``. A hook with ``webhook_pause_after``
   deliveries given up in a row is paused with the reason; a success sets its
   count back to 0.

Delivery is at least once (a worker that dies after sending and before
recording sends again after the lease): receivers de-duplicate on the event id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from superintendent.config import Settings, get_settings
from superintendent.store.db import session_scope
from superintendent.store.models import UTCDateTime, Webhook, WebhookDelivery, utcnow
from superintendent.webhooks.events import Status

log = logging.getLogger(__name__)

_H = Webhook.__table__
_D = WebhookDelivery.__table__
SIGNATURE_HEADER = "X-Superintendent-Signature"
EVENT_HEADER = "X-Superintendent-Event"
DELIVERY_HEADER = "X-Superintendent-Delivery"
USER_AGENT = "superintendent-webhooks/1"
SENDERS = 4  # requests in flight at once within a round
ERROR_CHARS = 500


# --------------------------------------------------------------------------- signing


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value: ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance_seconds: float = 300, now: float | None = None) -> bool:
    """What a receiver checks: a ``v1`` signature over this body, made within ``tolerance_seconds`` of ``now``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# --------------------------------------------------------------------------- one round


@dataclass(frozen=True)
class _Taken:
    id: int
    webhook_id: int
    event: str
    event_id: str
    payload: str
    attempts: int
    url: str
    secret: str


@dataclass(frozen=True)
class _Outcome:
    taken: _Taken
    code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Round:
    """What one :func:`deliver_due` did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    paused_hooks: tuple[int, ...] = ()

    @property
    def sent(self) -> int:
        return self.delivered + self.retrying + self.failed


def _take(engine: Engine, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[_Taken]:
    due = (sa.select(_D.c.id).join(_H, _H.c.id == _D.c.webhook_id)
           .where(_D.c.status == Status.pending.value, _D.c.next_attempt_at <= now, _H.c.active, _H.c.paused_at.is_(None))
           .order_by(_D.c.next_attempt_at, _D.c.id).limit(limit).with_for_update(of=_D, skip_locked=True))
    when = UTCDateTime()
    with session_scope(engine) as s:
        rows = s.execute(
            sa.update(_D).where(_D.c.id.in_(due.scalar_subquery()), _D.c.status == Status.pending.value, _D.c.next_attempt_at <= now)
            .values(attempts=_D.c.attempts + 1, last_attempt_at=sa.literal(now, when), next_attempt_at=sa.literal(now + lease, when))
            .returning(_D.c.id, _D.c.webhook_id, _D.c.event, _D.c.event_id, _D.c.payload, _D.c.attempts)).all()
        if not rows:
            return []
        hooks = {h.id: h for h in s.execute(sa.select(_H.c.id, _H.c.url, _H.c.secret).where(_H.c.id.in_({r.webhook_id for r in rows})))}
    return sorted((_Taken(r.id, r.webhook_id, r.event, r.event_id, r.payload, r.attempts, hooks[r.webhook_id].url,
                          hooks[r.webhook_id].secret) for r in rows if r.webhook_id in hooks), key=lambda t: t.id)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - urllib's signature
        return None  # a redirect is an answer other than 2xx: the delivery failed (the body is never re-sent elsewhere)


_OPENER = urllib.request.build_opener(_NoRedirects)


def _send(taken: _Taken, timeout: float) -> _Outcome:
    body = taken.payload.encode()
    request = urllib.request.Request(taken.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT, EVENT_HEADER: taken.event,
        DELIVERY_HEADER: taken.event_id, SIGNATURE_HEADER: sign(taken.secret, body, int(time.time()))})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()
    except (OSError, ValueError) as exc:  # refused, reset, timed out, DNS, a URL urllib cannot open
        return _Outcome(taken, None, _why(exc, timeout)[:ERROR_CHARS])
    if 200 <= code < 300:
        return _Outcome(taken, code, None)
    return _Outcome(taken, code, f"the receiver answered HTTP {code} (expected 2xx)")


def _why(exc: OSError | ValueError, timeout: float) -> str:
    """A failed request's reason in words, e.g. "could not connect: Connection refused"."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ValueError):
        return f"the URL cannot be opened: {reason}"
    if isinstance(reason, OSError):
        return f"could not connect: {reason.strerror or reason}"
    return f"could not connect: {reason}"


def _retry_delay(schedule: tuple[float, ...], attempts: int, rng: np.random.Generator) -> float | None:
    """Seconds until the next try after ``attempts`` tries failed; None once the schedule is spent."""
    if attempts > len(schedule):
        return None
    return max(0.0, schedule[attempts - 1] * float(rng.uniform(0.8, 1.2)))


def _record(engine: Engine, outcomes: list[_Outcome], now: dt.datetime, settings: Settings, rng: np.random.Generator) -> Round:
    delivered = retrying = failed = 0
    paused: list[int] = []
    when = UTCDateTime()
    with session_scope(engine) as s:
        for o in outcomes:
            row = _D.c.id == o.taken.id
            if o.ok:
                delivered += 1
                s.execute(sa.update(_D).where(row).values(status=Status.delivered.value, response_code=o.code, last_error=None,
                                                          delivered_at=sa.literal(now, when)))
                s.execute(sa.update(_H).where(_H.c.id == o.taken.webhook_id, _H.c.failures != 0).values(failures=0))
                continue
            delay = _retry_delay(settings.webhook_retry_seconds, o.taken.attempts, rng)
            if delay is not None:
                retrying += 1
                s.execute(sa.update(_D).where(row).values(response_code=o.code, last_error=o.error,
                                                          next_attempt_at=sa.literal(now + dt.timedelta(seconds=delay), when)))
                continue
            failed += 1
            s.execute(sa.update(_D).where(row).values(status=Status.failed.value, response_code=o.code, last_error=o.error))
            failures = s.execute(sa.update(_H).where(_H.c.id == o.taken.webhook_id).values(failures=_H.c.failures + 1)
                                 .returning(_H.c.failures, _H.c.paused_at)).first()
            if failures is not None and failures.paused_at is None and failures.failures >= settings.webhook_pause_after:
                given_up = "1 delivery was" if failures.failures == 1 else f"{failures.failures} deliveries in a row were"
                reason = (f"paused at {now:%Y-%m-%d %H:%M} UTC: {given_up} given up after "
                          f"{len(settings.webhook_retry_seconds) + 1} tries each; the last: {o.error}. Fix the receiver, then resume the hook.")
                s.execute(sa.update(_H).where(_H.c.id == o.taken.webhook_id)
                          .values(paused_at=sa.literal(now, when), paused_reason=reason[:ERROR_CHARS * 2]))
                paused.append(o.taken.webhook_id)
    return Round(delivered, retrying, failed, tuple(paused))


def deliver_due(engine: Engine, now: dt.datetime | None = None, *, limit: int | None = None,
                rng: np.random.Generator | int | None = None) -> Round:
    """Send the deliveries that are due (at most ``limit``, default ``webhook_batch_size``) and record what came of them."""
    settings = get_settings()
    now = now or utcnow()
    limit = limit or settings.webhook_batch_size
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    timeout = settings.webhook_timeout_seconds
    lease = dt.timedelta(seconds=timeout * math.ceil(limit / SENDERS) + 60)  # longer than the round can take
    taken = _take(engine, now, limit, lease)
    if not taken:
        return Round()
    with ThreadPoolExecutor(max_workers=min(SENDERS, len(taken)), thread_name_prefix="webhook-send") as pool:
        outcomes = list(pool.map(lambda t: _send(t, timeout), taken))
    result = _record(engine, outcomes, now, settings, rng)
    for hook_id in result.paused_hooks:
        log.warning("webhook %d paused: its deliveries keep failing", hook_id)
    return result


def deliver_due_job(engine: Engine) -> None:
    """The scheduler's job: a round, its error logged (a broken database must not stop the scheduler's other jobs)."""
    try:
        deliver_due(engine)
    except sa.exc.SQLAlchemyError:
        log.exception("webhook delivery round failed; the next round tries again")


def add_delivery_job(scheduler, engine: Engine, tick_seconds: float | None = None) -> None:  # noqa: ANN001 - an APScheduler scheduler
    """Register :func:`deliver_due_job` on ``scheduler`` every ``webhook_tick_seconds`` (one job per scheduler)."""
    from apscheduler.triggers.interval import IntervalTrigger

    seconds = tick_seconds or get_settings().webhook_tick_seconds
    scheduler.add_job(deliver_due_job, IntervalTrigger(seconds=seconds), args=[engine], id="webhook-delivery",
                      coalesce=True, max_instances=1, replace_existing=True)
