"""The Progress page's Agreement section and the Label page's blindness, through Streamlit's AppTest.

Real database (SQLite and PostgreSQL), real users who log in, labels given
through the queue by three labellers with three annotations per item. The
last test draws the section in headless Chromium (charts included) and takes
the screenshot docs/agreement.md shows (into its temporary folder here;
tools/screenshots.py writes docs/images/progress-agreement.png from the same
tour, tests/browser_helpers.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import AGREEMENT_LABELS as LABELS  # item i's labels from ann, ben, cid: p3 a three-way tie, p1 and p2 2 against 1
from browser_helpers import AGREEMENT_OPTIONS as OPTIONS
from browser_helpers import PASSWORD, VIEWPORT, label_all, open_agreement, screenshots_into, seed_agreement, shoot_agreement
from browser_helpers import make_agreement_project as make_project
from streamlit.testing.v1 import AppTest
from test_browser import browser, server  # noqa: F401  (fixtures)

from superintendent import auth, queue
from superintendent.agreement import annotations_long
from superintendent.al import agreement
from superintendent.store import session_scope

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def team(app_env):
    """The app's database with an admin ("boss") and the labellers of LABELS."""
    with session_scope(app_env) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        for name in LABELS:
            auth.create_user(s, name, PASSWORD, "labeller")
    return app_env


def logged_in(name) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input(name)
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    return at.run()


def progress_page(name) -> AppTest:
    at = logged_in(name)
    at.switch_page("pages/progress.py").run()
    assert [e.value for e in at.error] == [] and [e.message for e in at.exception] == []
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def all_text(at) -> str:
    parts = [e.value for kind in ("markdown", "caption", "text", "info", "success", "warning", "subheader") for e in at.get(kind)]
    parts += [str(m.label) + " " + str(m.value) for m in at.metric]
    return "\n".join(map(str, parts))


def expected_fleiss() -> float:
    table = [[[LABELS[u][i] for u in LABELS].count(c) for c in OPTIONS] for i in range(6)]
    return agreement.fleiss_kappa(table).value


def test_admin_sees_agreement_per_labeller_per_class_and_the_disputed_items(team):
    project = make_project(team)
    for name, labels in LABELS.items():
        label_all(team, project, name, labels)
    at = progress_page("boss")
    shown = metrics(at)
    assert shown["Fleiss' kappa"] == f"{expected_fleiss():.3f}"
    assert shown["Items compared"] == "6" and shown["Labellers compared"] == "3"
    assert any("Krippendorff's alpha on the same labels" in c.value for c in at.caption)
    charts = at.get("plotly_chart")
    assert len(charts) == 6  # per class, per user, timeline; agreement per labeller, per class, per pair
    items = at.dataframe[-1].value
    assert list(items["external id"]) == ["p3", "p1", "p2"]  # the tie first, then 2 against 1, by item
    assert list(items["tie"]) == [True, False, False]
    assert list(items["votes"]) == ["bird 1 · cat 1 · dog 1", "dog 2 · cat 1", "dog 2 · cat 1"]
    assert list(items["consensus"]) == ["bird", "dog", "dog"]  # a tie goes to the label given first (ann's)
    assert list(items["data"]) == ["photo of pet number 3", "photo of pet number 1", "photo of pet number 2"]
    assert items["disagreement"].tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3])


def test_a_labeller_sees_no_agreement_figures(team):
    """Blind labelling: a labeller could change one of their labels and watch a figure move; so they see none."""
    project = make_project(team)
    for name, labels in LABELS.items():
        label_all(team, project, name, labels)
    at = progress_page("ann")
    assert not {"Fleiss' kappa", "Items compared", "Labellers compared"} & set(metrics(at))
    assert any("shown to admins and reviewers only" in c.value for c in at.caption)
    assert len(at.dataframe) == 1  # their own pace; no table of items with everybody's votes
    text = all_text(at)
    assert "Items with most disagreement" not in text and "ben" not in text and "cid" not in text
    assert len(at.get("plotly_chart")) == 3  # per class, their pace, their timeline


def test_a_reviewer_sees_the_agreement_section(team):
    project = make_project(team)
    for name, labels in LABELS.items():
        label_all(team, project, name, labels)
    with session_scope(team) as s:
        auth.create_user(s, "rita", PASSWORD, "reviewer")
    at = progress_page("rita")
    assert metrics(at)["Fleiss' kappa"] == f"{expected_fleiss():.3f}"
    assert list(at.dataframe[-1].value["external id"]) == ["p3", "p1", "p2"]


def test_no_agreement_section_until_two_labellers_share_an_item(team):
    project = make_project(team)
    label_all(team, project, "ann", LABELS["ann"])
    at = progress_page("boss")
    assert "Fleiss' kappa" not in metrics(at) and not any(s.value == "Agreement" for s in at.subheader)
    assert any("agreement between them shows here once two have labelled the same item" in c.value for c in at.caption)
    with session_scope(team) as s:  # logging in opened the Label page, which leased boss an item: hand it back
        queue.release(s, project, auth.get_user(s, "boss").id)
    label_all(team, project, "ben", LABELS["ben"])
    at = progress_page("boss")
    assert metrics(at)["Cohen's kappa"] == f"{agreement.cohen_kappa(LABELS['ann'], LABELS['ben']).value:.3f}"
    assert any("No item has all its 3 labels yet." in s.value for s in at.success)


def test_one_class_only_shows_undefined_with_the_reason(team):
    project = make_project(team)
    for name in ("ann", "ben"):
        label_all(team, project, name, ["cat"] * 6)
    at = progress_page("boss")
    assert metrics(at)["Cohen's kappa"] == "undefined"
    assert any("every label is 'cat'" in c.value and "undefined" in c.value for c in at.caption)


def test_multi_label_projects_compare_each_option(team):
    with session_scope(team) as s:
        project = queue.create_project(s, "tags", options=OPTIONS, label_mode="multi", annotations_per_item=2)
        queue.add_items(s, project, [f"scene {i}" for i in range(4)], external_ids=[f"p{i}" for i in range(4)])
    label_all(team, project, "ann", [["cat"], ["cat", "dog"], [], ["bird"]])
    label_all(team, project, "ben", [["cat"], ["dog"], ["dog"], ["bird"]])
    at = progress_page("boss")
    expected = agreement.overall(annotations_long(team, project), "multi", OPTIONS)
    assert metrics(at)["Cohen's kappa"] == f"{expected.value:.3f}"
    assert any("each option is compared as a yes/no question" in c.value for c in at.caption)
    items = at.dataframe[-1].value
    assert set(items["external id"]) == {"p1", "p2"} and list(items["tie"]) == [True, True]


def test_the_label_page_never_shows_another_labellers_label(team):
    """k = 3: after ann and ben labelled every item, cid's Label page shows the item and the buttons, nothing of theirs."""
    project = make_project(team)
    label_all(team, project, "ann", ["bird"] * 6)
    label_all(team, project, "ben", ["bird"] * 6)
    at = logged_in("cid")
    assert at.title[0].value == "Label"
    assert [b.label for b in at.button if (b.key or "").startswith("label-opt")] == OPTIONS
    text = all_text(at)
    assert "photo of pet number" in text
    for leak in ("bird", "ann", "ben", "Model's guess"):
        assert leak not in text
    at.button(key="label-opt-0").click().run()
    text = all_text(at)
    assert "bird" not in text and "ann" not in text and "ben" not in text


def test_the_agreement_section_in_a_real_browser(server, browser, tmp_path):
    base, db_url = server
    seed_agreement(db_url)
    page = browser.new_page(viewport=VIEWPORT)
    open_agreement(page, base)
    assert page.get_by_text("Fleiss' kappa", exact=True).count() >= 1
    assert page.get_by_text(f"{expected_fleiss():.3f}", exact=True).count() == 1
    titles = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(t => t.textContent)")
    assert {"Each labeller vs the others' majority (Cohen's kappa)", "Agreement per class",
            "Cohen's kappa for each pair of labellers"} <= set(titles)
    shoot_agreement(page, screenshots_into(tmp_path / "screenshots"))
    assert (tmp_path / "screenshots" / "progress-agreement.png").stat().st_size > 0
