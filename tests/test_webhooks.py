"""Webhooks on SQLite and PostgreSQL: events enqueued in the label's transaction, delivered by the worker to a
real receiver on 127.0.0.1, signed, retried, never twice, and paused when they keep failing."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
import sqlalchemy as sa
from webhook_receiver import receiving, signature_is_valid

from superintendent import queue, webhooks
from superintendent.auth import ensure_user
from superintendent.learning.retrain import run_retrain
from superintendent.orchestration import Orchestrator, start_background_scheduler
from superintendent.store import Role, session_scope, utcnow
from superintendent.store.models import Webhook, WebhookDelivery
from superintendent.validation import NotFoundError, ValidationError

ALL = list(webhooks.EVENTS)


def make_project(engine, name="pets", n_items=2, **settings):
    settings.setdefault("options", ["cat", "dog"])
    with session_scope(engine) as s:
        project = queue.create_project(s, name, **settings)
        queue.add_items(s, project, [f"item {i}" for i in range(n_items)])
        alice = ensure_user(s, "alice", role=Role.labeller)
        bob = ensure_user(s, "bob", role=Role.labeller)
    return project, alice, bob


def add_hook(engine, project, url, events=ALL):
    with session_scope(engine) as s:
        return webhooks.create_hook(s, project, url, events)


def label(engine, project, user, value):
    """Claim and submit through queue.act, as every front end does; returns the item's external id."""
    with session_scope(engine) as s:
        task = queue.act(s, project, user, queue.Action.claim).task
        queue.act(s, project, user, queue.Action.submit, item_id=task.item_id, value=value)
        queue.act(s, project, user, queue.Action.release)  # give back the next item submit leased (leaving the page)
    return task.external_id


def outbox(engine):
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars().all()


def events_in(engine):
    return [d.event for d in outbox(engine)]


def deliver_until_done(engine, rounds=20):
    for _ in range(rounds):
        webhooks.deliver_due(engine, rng=0)
        if not any(d.status == "pending" for d in outbox(engine)):
            return
    raise AssertionError(f"deliveries still pending after {rounds} rounds: {[(d.event, d.status) for d in outbox(engine)]}")


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setenv("SUPERINTENDENT_WEBHOOK_RETRY_SECONDS", "[0, 0, 0, 0, 0]")


# --------------------------------------------------------------------------- enqueue, in the event's transaction


def test_a_submit_enqueues_its_events_in_its_own_transaction(engine):
    project, alice, bob = make_project(engine, n_items=2)
    hook = add_hook(engine, project, "http://127.0.0.1:9/hook")
    add_hook(engine, project, "http://127.0.0.1:9/only-runs", ["retrain.finished"])  # subscribed to something else
    other, _, _ = make_project(engine, name="other")
    add_hook(engine, other, "http://127.0.0.1:9/other")  # another project's hook hears nothing of "pets"

    first = label(engine, project, alice, "cat")
    assert events_in(engine) == ["annotation.created", "item.completed"]  # one annotation per item: the label completes it
    created = json.loads(outbox(engine)[0].payload)
    assert created["project"] == {"id": project.id, "name": "pets"}
    assert created["data"]["external_id"] == first and created["data"]["label"] == "cat" and created["data"]["user"] == "alice"
    assert created["id"].startswith("evt_") and all(d.webhook_id == hook.hook.id for d in outbox(engine))

    label(engine, project, bob, "dog")  # the last item: the project is complete too
    assert events_in(engine)[2:] == ["annotation.created", "item.completed", "project.completed"]

    with pytest.raises(RuntimeError), session_scope(engine) as s:  # a submit rolled back enqueues nothing
        queue.act(s, project, alice, queue.Action.submit, item_id=created["data"]["item_id"], value="dog")
        assert len(events_in_session(s)) == 6  # the change is announced inside the transaction...
        raise RuntimeError("the caller fails after the submit")
    assert len(outbox(engine)) == 5  # ...and gone with its rollback
    assert all(d.status == "pending" and d.attempts == 0 for d in outbox(engine))


def events_in_session(s):
    return s.execute(sa.select(WebhookDelivery.event)).scalars().all()


def test_only_new_labels_are_announced_and_completion_once(engine):
    project, alice, bob = make_project(engine, n_items=1, annotations_per_item=2)
    add_hook(engine, project, "http://127.0.0.1:9/hook")
    with session_scope(engine) as s:
        item_id = queue.act(s, project, alice, queue.Action.claim).task.item_id
        queue.act(s, project, alice, queue.Action.submit, item_id=item_id, value="cat")
        queue.submit(s, project, alice, item_id, "cat")  # the same label again (a retried transaction): nothing new
    assert events_in(engine) == ["annotation.created"]  # one of two annotations: not complete yet
    with session_scope(engine) as s:
        queue.submit(s, project, alice, item_id, "dog")  # alice changes her label
    changed = json.loads(outbox(engine)[-1].payload)["data"]
    assert (changed["label"], changed["previous_label"]) == ("dog", "cat")
    with session_scope(engine) as s:
        queue.submit(s, project, bob, item_id, "dog")
        queue.submit(s, project, bob, item_id, "cat")  # a change after completion completes nothing again
    assert events_in(engine) == ["annotation.created", "annotation.created", "annotation.created", "item.completed",
                                 "project.completed", "annotation.created"]


def test_paused_and_inactive_hooks_get_nothing(engine):
    project, alice, _ = make_project(engine, n_items=3)
    hook = add_hook(engine, project, "http://127.0.0.1:9/hook", ["annotation.created"])
    with session_scope(engine) as s:
        webhooks.pause_hook(s, project, hook.hook.id)
    label(engine, project, alice, "cat")
    assert outbox(engine) == []
    with session_scope(engine) as s:
        webhooks.resume_hook(s, project, hook.hook.id)
    label(engine, project, alice, "cat")
    assert events_in(engine) == ["annotation.created"]


def test_a_finished_run_announces_retrain_finished(engine):
    project, _, _ = make_project(engine)
    add_hook(engine, project, "http://127.0.0.1:9/hook", ["retrain.finished"])
    run = run_retrain(engine, project)  # no model set: the run ends "skipped", and says why
    (row,) = outbox(engine)
    body = json.loads(row.payload)
    assert body["event"] == "retrain.finished" and body["data"]["run_id"] == run.id
    assert body["data"]["status"] == "skipped" and body["data"]["message"]


# --------------------------------------------------------------------------- managing hooks


@pytest.mark.parametrize(("url", "says"), [
    ("", "empty"), ("ftp://example.com/x", "http:// or https://"), ("https:///path", "names no host"),
    ("https://user:pw@example.com/", "user name or password"), ("https://exa mple.com", "spaces"),
    ("https://example.com:99999/", "cannot be read"), ("https://e.com/" + "a" * 2000, "at most 2,000"),
], ids=["empty", "ftp", "no-host", "credentials", "space", "bad-port", "too-long"])
def test_bad_urls_are_refused_with_a_reason(engine, url, says):
    project, _, _ = make_project(engine)
    with pytest.raises(ValidationError, match=says), session_scope(engine) as s:
        webhooks.create_hook(s, project, url, ALL)
    with session_scope(engine, write=False) as s:
        assert webhooks.list_hooks(s, project) == []


def test_hooks_are_created_changed_and_deleted(engine):
    project, _, _ = make_project(engine)
    other, _, _ = make_project(engine, name="other")
    with pytest.raises(ValidationError, match="unknown webhook event 'item.deleted'"), session_scope(engine) as s:
        webhooks.create_hook(s, project, "https://example.com/h", ["item.deleted"])
    with pytest.raises(ValidationError, match="at least one event"), session_scope(engine) as s:
        webhooks.create_hook(s, project, "https://example.com/h", [])
    created = add_hook(engine, project, " https://example.com/h ", ["project.completed", "annotation.created"])
    assert created.secret.startswith("whsec_") and len(created.secret) > 40
    assert created.hook.events == ("annotation.created", "project.completed") and created.hook.url == "https://example.com/h"
    assert "secret" not in vars(created.hook)  # the view never carries it
    with session_scope(engine) as s:
        changed = webhooks.update_hook(s, project, created.hook.id, url="http://example.org/x", events=["item.completed"])
    assert (changed.url, changed.events, changed.state) == ("http://example.org/x", ("item.completed",), "active")
    with pytest.raises(NotFoundError, match="not a webhook of project 'other'"), session_scope(engine) as s:
        webhooks.delete_hook(s, other, created.hook.id)
    with session_scope(engine) as s:
        webhooks.delete_hook(s, project, created.hook.id)
        assert webhooks.list_hooks(s, project) == []


# --------------------------------------------------------------------------- delivery


def test_a_receiver_failing_twice_gets_every_event_once_signed(engine, fast_retries):
    project, alice, bob = make_project(engine, n_items=2)
    with receiving([500, 500, 200]) as receiver:
        hook = add_hook(engine, project, receiver.url)
        label(engine, project, alice, "cat")
        label(engine, project, bob, "dog")
        run_retrain(engine, project)
        deliver_until_done(engine)
    rows = outbox(engine)
    assert [r.event for r in rows] == ["annotation.created", "item.completed", "annotation.created", "item.completed",
                                       "project.completed", "retrain.finished"]
    assert all(r.status == "delivered" and r.attempts == 3 and r.response_code == 200 for r in rows)
    accepted = receiver.accepted()
    assert receiver.accepted_per_delivery() == {r.event_id: 1 for r in rows}  # every event once
    assert len(receiver.requests) == 3 * len(rows)  # 500, 500, 200 each
    for request in accepted:
        assert signature_is_valid(hook.secret, request), request.headers
        assert request.headers["X-Superintendent-Event"] == request.json["event"]
        assert request.headers["X-Superintendent-Delivery"] == request.json["id"]
        assert request.headers["Content-Type"] == "application/json"
    forged = accepted[0]
    forged.body = forged.body.replace(b'"pets"', b'"cats"')
    assert not signature_is_valid(hook.secret, forged)
    assert webhooks.verify(hook.secret, accepted[1].body, accepted[1].headers["X-Superintendent-Signature"])
    assert not webhooks.verify(hook.secret, accepted[1].body, accepted[1].headers["X-Superintendent-Signature"],
                               now=dt.datetime.now().timestamp() + 3600)  # an old signature is refused (replay)


def test_retries_wait_their_backoff(engine):
    project, alice, _ = make_project(engine)
    with receiving([503, 200]) as receiver:
        add_hook(engine, project, receiver.url, ["annotation.created"])
        label(engine, project, alice, "cat")
        start = utcnow()
        assert webhooks.deliver_due(engine, start, rng=1).retrying == 1
        (row,) = outbox(engine)
        assert row.status == "pending" and row.response_code == 503 and "HTTP 503" in row.last_error
        assert dt.timedelta(seconds=8) <= row.next_attempt_at - start <= dt.timedelta(seconds=12)  # 10 s +-20 %
        assert webhooks.deliver_due(engine, start + dt.timedelta(seconds=5)).sent == 0  # not due yet
        assert webhooks.deliver_due(engine, start + dt.timedelta(seconds=13)).delivered == 1
    assert len(receiver.requests) == 2


def test_two_workers_never_deliver_a_row_twice(engine, db_url):
    project, alice, _ = make_project(engine, n_items=30)
    with receiving([200], delay=0.01) as receiver:
        add_hook(engine, project, receiver.url, ["annotation.created"])
        for _ in range(30):
            label(engine, project, alice, "cat")
        second = sa.create_engine(db_url) if db_url.startswith("postgresql") else engine
        errors = []

        def work(eng):
            try:
                for _ in range(40):
                    webhooks.deliver_due(eng, limit=3)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(e,)) for e in (engine, second)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert not errors
    rows = outbox(engine)
    assert len(rows) == 30 and all(r.status == "delivered" and r.attempts == 1 for r in rows)
    assert len(receiver.requests) == 30 and receiver.accepted_per_delivery() == {r.event_id: 1 for r in rows}


def test_a_hook_that_keeps_failing_is_paused_and_resumes(engine, monkeypatch):
    monkeypatch.setenv("SUPERINTENDENT_WEBHOOK_RETRY_SECONDS", "[0]")  # two tries, then given up
    project, alice, _ = make_project(engine, n_items=8)
    with receiving([500]) as receiver:
        hook = add_hook(engine, project, receiver.url, ["annotation.created"])
        for _ in range(5):
            label(engine, project, alice, "cat")
        webhooks.deliver_due(engine)
        assert webhooks.deliver_due(engine).paused_hooks == (hook.hook.id,)
        with session_scope(engine, write=False) as s:
            (view,) = webhooks.list_hooks(s, project)
        assert view.state == "paused (failing)" and view.failures == 5
        assert "5 deliveries in a row were given up" in view.paused_reason and "HTTP 500" in view.paused_reason
        assert [r.status for r in outbox(engine)] == ["failed"] * 5
        label(engine, project, alice, "cat")  # paused: nothing more is enqueued
        assert len(outbox(engine)) == 5 and webhooks.deliver_due(engine).sent == 0
        receiver.answers[:] = [200]
        with session_scope(engine) as s:
            view = webhooks.resume_hook(s, project, hook.hook.id)
        assert (view.state, view.failures, view.paused_reason) == ("active", 0, None)
        label(engine, project, alice, "cat")
        assert webhooks.deliver_due(engine).delivered == 1
    with session_scope(engine, write=False) as s:
        assert s.get(Webhook, hook.hook.id).failures == 0
        log = webhooks.recent_deliveries(s, project)
    assert [d.status for d in log] == ["delivered"] + ["failed"] * 5  # newest first


def test_an_unreachable_receiver_is_a_failure_with_its_reason(engine, monkeypatch):
    monkeypatch.setenv("SUPERINTENDENT_WEBHOOK_RETRY_SECONDS", "[]")
    project, alice, _ = make_project(engine)
    with receiving() as receiver:
        url = receiver.url  # the port is free again once the receiver stops
    add_hook(engine, project, url, ["annotation.created"])
    label(engine, project, alice, "cat")
    assert webhooks.deliver_due(engine).failed == 1
    (row,) = outbox(engine)
    assert row.status == "failed" and row.response_code is None and "Connection refused" in row.last_error


def test_a_receiver_too_slow_to_answer_times_out(engine, monkeypatch):
    monkeypatch.setenv("SUPERINTENDENT_WEBHOOK_RETRY_SECONDS", "[]")
    monkeypatch.setenv("SUPERINTENDENT_WEBHOOK_TIMEOUT_SECONDS", "0.3")
    project, alice, _ = make_project(engine)
    with receiving([200], delay=1.5) as receiver:
        add_hook(engine, project, receiver.url, ["annotation.created"])
        label(engine, project, alice, "cat")
        assert webhooks.deliver_due(engine).failed == 1
    (row,) = outbox(engine)
    assert row.status == "failed" and row.last_error == "no answer within 0.3 s"


@pytest.mark.parametrize("runner", ["app scheduler", "orchestrate --all"])
def test_the_schedulers_run_the_worker(engine, monkeypatch, runner):
    """The web app's scheduler (start_background_scheduler) and `orchestrate --all`'s loop both send deliveries."""
    monkeypatch.setenv("SUPERINTENDENT_WEBHOOK_TICK_SECONDS", "0.2")
    project, alice, _ = make_project(engine)
    with receiving() as receiver:
        add_hook(engine, project, receiver.url, ["annotation.created"])
        label(engine, project, alice, "cat")
        if runner == "app scheduler":
            scheduler = start_background_scheduler(engine, tick_seconds=3600)
            stop = lambda: scheduler.shutdown(wait=True)  # noqa: E731
        else:
            loop = Orchestrator(lambda: [], 3600, deliver_webhooks_of=engine)
            thread = threading.Thread(target=loop.run)
            thread.start()
            stop = lambda: (loop.stop(), thread.join())  # noqa: E731
        try:
            deadline = time.monotonic() + 20
            while not receiver.accepted() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop()
    assert [r.json["event"] for r in receiver.accepted()] == ["annotation.created"]
    assert [r.status for r in outbox(engine)] == ["delivered"]
