"""A team's first hour, end to end, in two headless Chromium contexts, on SQLite and on PostgreSQL (issue 12).

The tour (tests/team_tour.py, also drawn into docs/images by tools/screenshots.py): the admin creates a project
with guidelines and option descriptions, uploads a CSV of pyjokes' jokes with an id and a label column, and makes
the labeller bob its member. bob labels 20 items by keyboard while the admin labels in the same project; the
admin changes carol's password (only that), then deactivates bob while he labels: bob's next key shows the
sign-in form. Here: that key stored nothing, carol's role and state stayed, and the admin's CSV export joins
back to the uploaded file by id, with every label as it was given. Every step is screenshotted into the test's
temporary folder, and no page may show an exception (the tour checks).
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from browser_helpers import AppDidNotStart, running_app, screenshots_into
from team_tour import ADMIN_LABELS, BOB_LABELS, CAROL_PASSWORD, PRELABELLED, TEAM_SHOTS, seed_team, team_tour

from superintendent import auth
from superintendent.store import Annotation, User, make_engine, session_scope
from tests.test_browser import _need_chromium, browser

__all__ = ["browser"]  # the fixture of tests/test_browser.py, used here


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


@pytest.fixture
def app(db_url, tmp_path):
    """``streamlit run streamlit_app.py`` on a fresh database (SQLite file or PostgreSQL schema) with boss, bob and carol."""
    _need_chromium()
    seed_team(db_url)
    try:
        with running_app(tmp_path, db_url=db_url) as running:
            yield running
    except AppDidNotStart as exc:
        pytest.fail(str(exc))


def test_a_team_first_hour(app, browser, tmp_path):
    base, db_url = app
    shots = tmp_path / "screenshots"
    tour = team_tour(browser, base, tmp_path, screenshots_into(shots))
    assert sorted(p.stem for p in shots.glob("*.png")) == sorted(TEAM_SHOTS)

    engine = make_engine(db_url)
    with session_scope(engine, write=False) as s:
        carol = auth.get_user(s, "carol")  # a password change only: role and state as they were
        assert (carol.role, carol.active) == ("labeller", True) and auth.verify_password(CAROL_PASSWORD, carol.password_hash)
        bob = auth.get_user(s, "bob")
        assert (bob.role, bob.active) == ("labeller", False)
        assert auth.get_user(s, "boss").role == "admin"
        by_bob = s.execute(sa.select(sa.func.count()).select_from(Annotation).where(Annotation.user_id == bob.id)).scalar_one()
        assert by_bob == BOB_LABELS, "the key bob pressed after his deactivation stored a label"
        assert s.execute(sa.select(User.username).where(User.active.is_(False))).scalars().all() == ["bob"]
    engine.dispose()

    # every exported row joins back to the uploaded file by id, with its label as it was given
    exported = pd.read_csv(tour.exported, dtype={"external_id": str}, keep_default_na=False)
    joined = exported.merge(tour.uploaded, left_on="external_id", right_on="id", suffixes=("", "_uploaded"), validate="one_to_one")
    assert len(joined) == len(exported) == PRELABELLED + BOB_LABELS + ADMIN_LABELS
    assert (joined["text"] == joined["joke"]).all()  # the shown text is in the export too (a text item's field is "text")
    for row in joined.itertuples():
        if row.label_uploaded:
            assert (row.labelled_by, row.label) == ("_import", row.label_uploaded), row
        else:
            assert tour.given[row.text.strip()] == (row.labelled_by, row.label), row
