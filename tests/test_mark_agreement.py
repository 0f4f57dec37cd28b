"""Agreement on spans and boxes (F1 of matched marks) against hand-computed cases; majority consensus and ties of marks;
the same read from a project whose three labellers annotate through the queue (SQLite and PostgreSQL), and the review
list's tie filter on such a project."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from browser_helpers import PASSWORD
from test_agreement_app import all_text, metrics, progress_page

from superintendent import auth, queue
from superintendent.agreement import annotations_long, project_agreement
from superintendent.al import agreement
from superintendent.al import mark_agreement as ma
from superintendent.al.matching import marks_consensus
from superintendent.auth import ensure_user
from superintendent.labels import consensus
from superintendent.queue import Action
from superintendent.store import Role, session_scope
from superintendent.validation import ValidationError


def span(start, end, label="PER"):
    return {"start": start, "end": end, "label": label}


def box(x, y, w=10, h=10, label="cat"):
    return {"x": x, "y": y, "width": w, "height": h, "label": label}


def frame(rows):
    """rows: (item_id, user, marks)."""
    return pd.DataFrame(rows, columns=["item_id", "user", "value"])


# --------------------------------------------------------------------------- F1, hand-computed


def test_spans_exact_against_overlap():
    # ann: [0,5) PER, [10,15) LOC; ben: [0,4) PER (overlaps ann's first), [10,15) LOC (the same).
    f = frame([(1, "ann", [span(0, 5), span(10, 15, "LOC")]), (1, "ben", [span(0, 4), span(10, 15, "LOC")])])
    exact = ma.overall(f, "spans", "exact")
    assert (exact.matched, exact.marks) == (1, 4) and exact.value == pytest.approx(2 * 1 / 4)
    assert exact.statistic == "F1 (spans matched exactly)"
    overlap = ma.overall(f, "spans", "overlap")
    assert (overlap.matched, overlap.marks) == (2, 4) and overlap.value == pytest.approx(1.0)
    assert (exact.n_items, exact.n_labellers) == (1, 2)
    assert exact.items_agreeing == 0 and overlap.items_agreeing == 1


def test_precision_and_recall_of_one_labeller_against_the_other_and_f1_symmetric():
    # ann marks 3 spans, ben 1 of them: precision of ann against ben 1/3, recall 1/1, F1 = 2*1/(3+1) = 0.5.
    f = frame([(1, "ann", [span(0, 2), span(3, 5), span(6, 8)]), (1, "ben", [span(3, 5)])])
    pair = ma.pairwise(f, "spans").iloc[0]
    assert (pair.user_a, pair.user_b, pair.marks_a, pair.marks_b, pair.matched) == ("ann", "ben", 3, 1, 1)
    assert pair.precision == pytest.approx(1 / 3) and pair.recall == pytest.approx(1.0) and pair.f1 == pytest.approx(0.5)
    swapped = ma.pairwise(f.replace({"user": {"ann": "zed"}}), "spans").iloc[0]  # zed now comes second
    assert (swapped.user_a, swapped.precision, swapped.recall) == ("ben", 1.0, pytest.approx(1 / 3))
    assert swapped.f1 == pytest.approx(pair.f1)
    labeller = ma.per_labeller(f, "spans").set_index("user")
    assert labeller.loc["ann", "precision"] == pytest.approx(1 / 3) and labeller.loc["ben", "precision"] == 1.0


@pytest.mark.parametrize("dx, matched", [(3, 1), (4, 0)], ids=["IoU 70/130 = 0.54 matches", "IoU 60/140 = 0.43 does not"])
def test_boxes_match_at_iou_one_half(dx, matched):
    f = frame([(1, "ann", [box(0, 0)]), (1, "ben", [box(dx, 0)])])
    score = ma.overall(f, "boxes")
    assert (score.matched, score.marks) == (matched, 2) and score.value == pytest.approx(matched)
    assert score.statistic == "F1 (boxes at IoU ≥ 0.5)"


def test_boxes_just_under_and_just_over_one_half():
    # 10x10 boxes shifted by d: IoU = 10(10-d) / (200 - 10(10-d)). d = 10/3 gives exactly 0.5.
    over, under = 3.3, 3.4  # IoU 0.5038 and 0.4925
    assert ma.overall(frame([(1, "a", [box(0, 0)]), (1, "b", [box(over, 0)])]), "boxes").matched == 1
    assert ma.overall(frame([(1, "a", [box(0, 0)]), (1, "b", [box(under, 0)])]), "boxes").matched == 0
    exactly = ma.overall(frame([(1, "a", [box(0, 0, 30, 10)]), (1, "b", [box(10, 0, 30, 10)])]), "boxes")  # 200/400
    assert exactly.matched == 1


def test_a_label_mismatch_is_no_match_but_counts_as_located():
    f = frame([(1, "ann", [span(0, 5, "PER"), span(6, 9, "LOC")]), (1, "ben", [span(0, 5, "LOC"), span(6, 9, "LOC")])])
    score = ma.overall(f, "spans")
    assert (score.matched, score.located, score.marks) == (1, 2, 4)
    assert score.value == pytest.approx(0.5) and score.location_f1 == pytest.approx(1.0)
    assert "ignoring labels" in ma.describe(score)
    labels = ma.per_label(f, "spans", options=["PER", "LOC"]).set_index("label")
    # PER: ann 1, ben 0, none matched -> 0; LOC: ann 1, ben 2, one matched -> 2*1/3
    assert labels.loc["PER", "marks"] == 1 and labels.loc["PER", "f1"] == 0.0
    assert labels.loc["LOC", "marks"] == 3 and labels.loc["LOC", "f1"] == pytest.approx(2 / 3)
    assert list(labels.index) == ["LOC", "PER"]  # most marked first


def test_empty_against_empty_moves_f1_neither_way_but_counts_as_agreeing():
    marks = [(1, "ann", [span(0, 5)]), (1, "ben", [span(0, 5), span(6, 8)])]  # F1 = 2*1/3
    with_empty = marks + [(2, "ann", []), (2, "ben", [])]
    a, b = ma.overall(frame(marks), "spans"), ma.overall(frame(with_empty), "spans")
    assert a.value == pytest.approx(2 / 3) and b.value == pytest.approx(2 / 3)
    assert (b.n_items, b.items_agreeing, b.items_empty) == (2, 1, 1)
    # one labeller marks nothing where the other marks one: that mark is unmatched
    c = ma.overall(frame(with_empty + [(3, "ann", []), (3, "ben", [span(0, 1)])]), "spans")
    assert (c.matched, c.marks) == (1, 4) and c.value == pytest.approx(0.5)


def test_nothing_marked_anywhere_is_undefined_with_the_reason():
    score = ma.overall(frame([(1, "ann", []), (1, "ben", []), (2, "ann", []), (2, "ben", [])]), "boxes")
    assert score.value is None and score.items_agreeing == 2
    assert "nobody marked anything on the 2 items compared" in score.reason
    assert ma.describe(score).startswith("undefined: nobody marked anything")
    assert ma.overall(frame([(1, "ann", [box(0, 0)])]), "boxes").reason == "no item has marks from two different labellers yet"


def test_per_label_and_overall_pool_every_pair_of_three_labellers():
    # one item, three labellers: ann PER+LOC, ben PER, cid LOC (exact)
    f = frame([(1, "ann", [span(0, 5), span(6, 9, "LOC")]), (1, "ben", [span(0, 5)]), (1, "cid", [span(6, 9, "LOC")])])
    # pairs: ann-ben matched 1 of 2+1; ann-cid matched 1 of 2+1; ben-cid 0 of 1+1 -> micro 2*2/8 = 0.5
    score = ma.overall(f, "spans")
    assert (score.matched, score.marks, score.n_labellers) == (2, 8, 3) and score.value == pytest.approx(0.5)
    pairs = ma.pairwise(f, "spans").set_index(["user_a", "user_b"])["f1"]
    assert pairs[("ann", "ben")] == pytest.approx(2 / 3) and pairs[("ann", "cid")] == pytest.approx(2 / 3) and pairs[("ben", "cid")] == 0
    assert pairs.mean() == pytest.approx(4 / 9) != score.value  # micro, not the mean of the pairs
    labels = ma.per_label(f, "spans").set_index("label")["f1"]
    assert labels["PER"] == pytest.approx(2 * 1 / 4) and labels["LOC"] == pytest.approx(2 * 1 / 4)
    assert list(ma.per_labeller(f, "spans")["user"]) == ["ben", "cid", "ann"]  # lowest F1 first (ben, cid: 0.5; ann 2/3)


def test_the_importers_marks_are_left_out_and_bad_input_is_refused():
    f = frame([(1, "_import", [span(0, 5)]), (1, "ann", [span(0, 5)])])
    assert ma.overall(f, "spans").n_items == 0
    with pytest.raises(ValidationError, match="spans are matched 'exact' or by 'overlap'; got 'iou'"):
        ma.overall(f, "spans", "iou")
    with pytest.raises(ValidationError, match="for spans and boxes projects; this project's label mode is 'single'"):
        ma.overall(f, "single")
    with pytest.raises(ValidationError, match="ann's annotation of item 1 is not a list of marks"):
        ma.overall(frame([(1, "ann", "PER"), (1, "ben", [])]), "spans")


def test_the_agreement_entry_points_route_marks_to_f1_not_kappa():
    f = frame([(1, "ann", [span(0, 5)]), (1, "ben", [span(0, 5), span(6, 8)])])
    report = agreement.agreement_report(f, "spans", ["PER"])
    assert isinstance(report, ma.MarkAgreementReport) and report.overall.value == pytest.approx(2 / 3)
    assert agreement.overall(f, "spans").value == pytest.approx(2 / 3)
    assert list(agreement.per_class(f, "spans")["label"]) == ["PER"]
    assert list(agreement.pairwise(f, "spans")["f1"]) == [pytest.approx(2 / 3)]
    assert set(agreement.per_labeller(f, "spans")["user"]) == {"ann", "ben"}
    with pytest.raises(ValidationError, match="Cohen's kappa does not apply to spans"):
        agreement.overall(f, "spans", statistic=agreement.COHEN)


def test_marks_as_text():
    text = "Ada Lovelace met Charles Babbage in London."
    assert ma.marks_text([span(0, 12), span(36, 42, "LOC")], "spans", {"text": text, "id": 3}) == "PER “Ada Lovelace” · LOC “London”"
    assert ma.marks_text([span(0, 12)], "spans") == "PER 0–12"
    assert ma.marks_text([box(5, 10, 20, 30.5)], "boxes") == "cat 20×30.5 at (5, 10)"
    assert ma.marks_text([], "boxes") == "nothing marked"


# --------------------------------------------------------------------------- consensus, hand-computed


PER, LOC = span(0, 12), span(36, 42, "LOC")


@pytest.mark.parametrize("values, expected", [
    ([[PER, LOC], [PER], [LOC]], ([PER, LOC], False)),  # each made by 2 of 3
    ([[PER], [PER], []], ([PER], False)),  # 2 of 3
    ([[PER], [], []], ([], False)),  # 1 of 3: no majority, and with three labellers no tie either
    ([[PER], [span(0, 12, "LOC")], [PER]], ([PER], False)),  # same place, other label: its own group, 1 of 3
    ([[PER], []], ([], True)),  # 1 of 2: a tie, left out
    ([[PER], [span(0, 12, "LOC")]], ([], True)),  # two labels for one place, one each: a tie
    ([[], []], ([], False)),  # both marked nothing: agreed, nothing to mark
    ([[PER, LOC], [PER, LOC], [PER], [LOC]], ([PER, LOC], False)),  # 3 of 4 each
    ([[PER, LOC], [PER], [LOC], []], ([], True)),  # 2 of 4 each
    ([[PER], [PER, LOC]], ([PER], True)),  # PER by both; LOC by one of two: a tie, though the first mark is agreed
], ids=["2of3-each", "2of3", "1of3", "label-split-3", "1of2-tie", "label-tie", "empty", "3of4", "2of4-ties", "agreed-and-tie"])
def test_span_consensus_by_majority(values, expected):
    assert marks_consensus(values, "spans") == expected
    assert consensus(values, "spans") == expected  # the one rule the queue, review and exports call


def test_box_consensus_groups_by_iou_and_keeps_the_first_labellers_box():
    a, b, c = box(0, 0), box(3, 0), box(6, 0)  # IoU a-b 0.54, b-c 0.54, a-c 0.25
    assert marks_consensus([[a], [b], [c]], "boxes") == ([a], False)  # a and b are one box (2 of 3); c alone
    assert marks_consensus([[a], [b], [c], [c]], "boxes") == ([], True)  # {a, b} and {c, c}: 2 of 4 each
    assert marks_consensus([[a, box(50, 50)], [b, box(51, 50)], [box(50, 51)]], "boxes") == ([box(50, 50), a], False)
    assert marks_consensus([[a], [box(0, 0, label="dog")], [a]], "boxes") == ([a], False)


# --------------------------------------------------------------------------- through the queue, both databases


TEXTS = ["Ada Lovelace met Charles Babbage in London.", "Grace Hopper lived in New York.", "Nothing here."]
# item i -> each labeller's marks (exact offsets of the texts above)
MARKS = {
    "ann": [[span(0, 12), span(36, 42, "LOC")], [span(0, 12), span(22, 30, "LOC")], []],
    "ben": [[span(0, 12), span(17, 32)], [span(0, 5), span(22, 30, "LOC")], []],
    "cid": [[span(0, 12), span(36, 42, "LOC")], [span(0, 12)], []],
}


def annotate(engine, project, users: dict, values: dict) -> None:
    """Each user annotates every item the queue hands them (claim, then submit through ``queue.act``) with
    ``values[name][i]`` for the item with external id ``t<i>``."""
    for name, uid in users.items():
        while True:
            with session_scope(engine) as s:
                task = queue.act(s, project, uid, Action.claim).task
                if task is None:
                    break
                queue.act(s, project, uid, Action.submit, item_id=task.item_id, value=values[name][int(task.external_id[1:])])


def make_spans_project(engine, users: dict, name: str = "ner3"):
    with session_scope(engine) as s:
        project = queue.create_project(s, name, label_mode="spans", options=["PER", "LOC"], data_type="text", annotations_per_item=3)
        queue.add_items(s, project, TEXTS, external_ids=["t0", "t1", "t2"])
    annotate(engine, project, users, MARKS)
    return project


@pytest.fixture
def spans_project(engine):
    with session_scope(engine) as s:
        users = {name: ensure_user(s, name, role=Role.labeller) for name in MARKS}
    return make_spans_project(engine, users)


def test_three_labellers_through_the_queue_give_the_hand_computed_figures(engine, spans_project):
    report = project_agreement(engine, spans_project)
    assert isinstance(report, ma.MarkAgreementReport)
    score = report.overall
    # item 0: ann-ben 1 of 2+2, ann-cid 2 of 2+2, ben-cid 1 of 2+2; item 1: ann-ben 1 of 2+2, ann-cid 1 of 2+1,
    # ben-cid 0 of 2+1; item 2: nothing marked. matched 6, marks 22 -> F1 12/22.
    assert (score.matched, score.marks, score.n_items, score.n_labellers) == (6, 22, 3, 3)
    assert score.value == pytest.approx(12 / 22)
    assert (score.items_agreeing, score.items_empty) == (1, 1)
    pairs = report.pairwise.set_index(["user_a", "user_b"])
    assert pairs.loc[("ann", "cid"), "f1"] == pytest.approx(2 * 3 / 7) and pairs.loc[("ann", "cid"), "items"] == 3
    assert pairs.loc[("ben", "cid"), "precision"] == pytest.approx(1 / 4) and pairs.loc[("ben", "cid"), "recall"] == pytest.approx(1 / 3)
    labels = report.per_label.set_index("label")
    # PER marks: item 0 ann 1, ben 2, cid 1 -> pairs (1+2)+(1+1)+(2+1) = 8, matched 3; item 1 ann 1, ben 1, cid 1 -> 6, matched 1
    assert (labels.loc["PER", "marks"], labels.loc["PER", "matched"]) == (14, 4)
    # LOC: item 0 ann 1, cid 1 -> (1+0)+(1+1)+(0+1) = 4, matched 1; item 1 ann 1, ben 1 -> (1+1)+(1+0)+(1+0) = 4, matched 1
    assert (labels.loc["LOC", "marks"], labels.loc["LOC", "matched"]) == (8, 2)
    overlap = project_agreement(engine, spans_project, how="overlap").overall
    assert overlap.matched == 8  # item 1: ben's "Grace" now matches ann's and cid's "Grace Hopper"
    items = report.disagreements.set_index("external_id")
    assert list(items.index) == ["t1", "t0", "t2"]  # least agreement first: F1 4/10, 8/12, nothing marked
    assert items.loc["t0", "consensus"] == [span(0, 12), span(36, 42, "LOC")] and not items.loc["t0", "tie"]
    assert items.loc["t1", "consensus"] == [span(0, 12), span(22, 30, "LOC")] and not items.loc["t1", "tie"]  # 2 of 3 each
    assert items.loc["t1", "marks"] == {"ann": 2, "ben": 2, "cid": 1}
    assert pd.isna(items.loc["t2", "f1"]) and items.loc["t2", "disagreement"] == 0
    # the same figures as the pure module on the frame the database gives
    assert ma.overall(annotations_long(engine, spans_project), "spans").value == pytest.approx(score.value)


def test_the_review_lists_ties_of_marks(engine):
    """Two labellers per item: where one marked a span the other did not, the consensus is a tie (left out) and the
    review list's tie filter finds the item; identical marks, and both marking nothing, are no tie."""
    with session_scope(engine) as s:
        project = queue.create_project(s, "ner2", label_mode="spans", options=["PER", "LOC"], data_type="text", annotations_per_item=2)
        queue.add_items(s, project, TEXTS, external_ids=["t0", "t1", "t2"])
        users = [ensure_user(s, name, role=Role.labeller) for name in ("ann", "ben")]
    annotate(engine, project, {"ann": users[0], "ben": users[1]}, {"ann": [[PER, LOC], [span(0, 12)], []], "ben": [[PER], [span(0, 12)], []]})
    with session_scope(engine, write=False) as s:
        ties = queue.review_items(s, project, ties=True).rows
        everything = {r.external_id: r for r in queue.review_items(s, project).rows}
        final = {f.external_id: (f.label, f.tie) for f in queue.final_labels(s, project)}
    assert [(r.external_id, r.consensus, r.tie) for r in ties] == [("t0", [PER], True)]
    assert not everything["t1"].tie and not everything["t2"].tie and everything["t2"].consensus == []
    assert final == {"t0": ([PER], True), "t1": ([span(0, 12)], False), "t2": ([], False)}


# --------------------------------------------------------------------------- the Progress page (AppTest)


def test_the_progress_page_shows_f1_for_a_spans_project(app_env):
    with session_scope(app_env) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        users = {name: auth.create_user(s, name, PASSWORD, "labeller") for name in MARKS}
    with session_scope(app_env) as s:
        users = {name: auth.get_user(s, name).id for name in MARKS}
    make_spans_project(app_env, users)
    at = progress_page("boss")
    shown = metrics(at)
    assert shown["F1"] == f"{12 / 22:.3f}" and shown["Items compared"] == "3" and shown["Labellers compared"] == "3"
    assert shown["Items in full agreement"] == "1 of 3"
    assert not {"Cohen's kappa", "Fleiss' kappa", "Krippendorff's alpha"} & set(shown)
    text = all_text(at)
    assert "spans match when they cover the same characters" in text and "Kappa does not apply here" in text
    titles = {json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")}
    assert {"Each labeller vs the others (F1)", "F1 per label", "F1 for each pair of labellers"} <= titles
    items = at.dataframe[-1].value
    assert list(items["external id"]) == ["t1", "t0"]  # least agreement first; t2 (nothing marked by anyone) is not listed
    assert list(items["consensus"]) == ["PER “Grace Hopper” · LOC “New York”", "PER “Ada Lovelace” · LOC “London”"]
    assert list(items["marks"]) == ["ann 2 · ben 2 · cid 1", "ann 2 · ben 2 · cid 2"]
    assert "'start'" not in text and "{" not in "".join(map(str, items["consensus"]))  # no raw JSON
    at.segmented_control(key="progress-agreement-match").set_value("overlap").run()
    assert metrics(at)["F1"] == f"{16 / 22:.3f}"
    assert "spans match when they overlap" in all_text(at)
