"""Webhooks end to end: `streamlit run` with its in-app scheduler on, an admin adds a hook on the Admin page
(its secret shown once), a labeller's click in Chromium reaches a receiver on 127.0.0.1, signed, and the
delivery log shows it. Screenshots of the Webhooks tab go into the test's folder (``SHOTS`` to keep them)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from browser_helpers import PASSWORD, VIEWPORT, AppDidNotStart, running_app, screenshots_into, settle, sign_in
from test_browser import browser  # noqa: F401 - the fixture (skips, or fails under CI=true, without Chromium)
from test_browser import _need_chromium
from webhook_receiver import receiving, signature_is_valid

from superintendent import audit, auth, queue, webhooks
from superintendent.store import init_db, make_engine, session_scope


def seed(db_url: str, dead_url: str) -> None:
    """boss (admin), alice (labeller), the project "reviews" with two items and a hook to ``dead_url``, where nobody listens."""
    engine = make_engine(db_url)
    init_db(engine)  # the server creates the schema on its first page view; nobody has opened one yet
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        auth.create_user(s, "alice", PASSWORD, "labeller")
        project = queue.create_project(s, "reviews", options=["good", "bad"], data_type="text")
        queue.add_items(s, project, ["a fine film", "a dull film"], external_ids=["r1", "r2"])
        webhooks.create_hook(s, project, dead_url, ["annotation.created"])
    engine.dispose()


def dead_hook_paused(db_url: str) -> bool:
    engine = make_engine(db_url)
    with session_scope(engine, write=False) as s:
        paused = any(h.paused_at for h in webhooks.list_hooks(s, queue.get_project(s, "reviews")))
    engine.dispose()
    return paused


def wait_for(condition, seconds: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.2)


def test_a_label_clicked_in_chromium_reaches_the_receiver(browser, tmp_path):  # noqa: F811 - the fixture
    _need_chromium()
    shoot = screenshots_into(Path(os.environ.get("SHOTS", tmp_path / "shots")))
    with receiving() as gone:
        dead_url = gone.url  # its port is closed again once the receiver stops
    seed(f"sqlite:///{tmp_path / 'app.db'}", dead_url)
    env = {"SUPERINTENDENT_RUN_SCHEDULER": "true", "SUPERINTENDENT_WEBHOOK_TICK_SECONDS": "0.5",
           "SUPERINTENDENT_WEBHOOK_RETRY_SECONDS": "[0.5, 0.5]", "SUPERINTENDENT_WEBHOOK_PAUSE_AFTER": "1"}
    with receiving([500, 200]) as receiver:
        try:
            app = running_app(tmp_path, extra_env=env)
            base, db_url = app.__enter__()
        except AppDidNotStart as exc:
            pytest.fail(str(exc))
        try:
            admin = browser.new_page(viewport=VIEWPORT)
            sign_in(admin, base, "boss")
            admin.get_by_role("link", name="Admin").click()
            settle(admin)
            admin.get_by_role("tab", name="Webhooks").click()
            settle(admin)
            shoot(admin, "webhooks-empty")
            admin.get_by_text("Add a webhook").click()  # the project has a hook already: the form is folded
            admin.get_by_role("textbox", name="URL").fill("ftp://example.com/x")
            admin.get_by_role("button", name="Add webhook").click()
            settle(admin)
            shoot(admin, "webhooks-bad-url")
            admin.get_by_text("the webhook URL must start with").first.wait_for(timeout=30_000)
            admin.get_by_role("textbox", name="URL").fill(receiver.url)
            admin.get_by_role("button", name="Add webhook").click()
            settle(admin)
            admin.get_by_text("it is shown only this once").first.wait_for(timeout=30_000)
            secret = admin.locator('[data-testid="stCode"]').first.inner_text().strip()
            assert secret.startswith("whsec_")
            shoot(admin, "webhooks-secret")
            admin.get_by_role("button", name="I have copied the secret: hide it").click()
            settle(admin)
            assert admin.get_by_text(secret).count() == 0  # shown once

            labeller = browser.new_page(viewport=VIEWPORT)
            sign_in(labeller, base, "alice")
            labeller.locator(".st-key-label-opt-0 button").click()  # "good"
            settle(labeller)
            wait_for(lambda: len(receiver.accepted()) >= 2, what="annotation.created and item.completed at the receiver")
            wait_for(lambda: dead_hook_paused(db_url), what="the hook nobody answers paused")
            accepted = receiver.accepted()
            assert sorted(r.json["event"] for r in accepted) == ["annotation.created", "item.completed"]
            created = next(r for r in accepted if r.json["event"] == "annotation.created")
            assert created.json["data"]["label"] == "good" and created.json["data"]["user"] == "alice"
            assert all(signature_is_valid(secret, r) for r in accepted)
            assert len(receiver.requests) == 4  # each answered 500 once, then 200

            admin.reload()
            settle(admin)
            admin.get_by_role("tab", name="Webhooks").click()
            settle(admin)
            admin.get_by_text("The latest 3 deliveries").first.wait_for(timeout=30_000)
            admin.get_by_text("1 delivery was given up").first.wait_for(timeout=30_000)  # the dead hook, paused
            shoot(admin, "webhooks-failing", full_page=False)
            admin.get_by_text("The latest 3 deliveries").first.scroll_into_view_if_needed()
            shoot(admin, "webhooks-log", full_page=False)
            admin.get_by_role("button", name="Pause").click()
            settle(admin)
            admin.get_by_text("paused by an admin").first.wait_for(timeout=30_000)
            shoot(admin, "webhooks-paused")
            with session_scope(make_engine(db_url), write=False) as s:  # the admin's changes are in the audit log; the secret is not
                entries = [(e.actor, e.action, e.details) for e in audit.recent(s)]
            assert [(actor, action) for actor, action, _ in entries[:2]] == [("boss", "webhook.pause"), ("boss", "webhook.create")]
            assert entries[1][2]["url"] == receiver.url and secret not in str(entries)
        finally:
            app.__exit__(None, None, None)
