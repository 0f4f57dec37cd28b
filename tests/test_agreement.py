"""Agreement statistics: published worked examples, independent implementations, properties, and a real database."""

from __future__ import annotations

import warnings
from collections import Counter

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from superintendent import queue
from superintendent.agreement import annotations_long, item_previews, project_agreement
from superintendent.al import agreement
from superintendent.al.disagreement import preview
from superintendent.auth import IMPORT_USER, ensure_user
from superintendent.store import Role, session_scope
from superintendent.validation import ValidationError

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters each, 5 categories; kappa = 0.210.
WIKIPEDIA_FLEISS = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers, 12 units,
# values 1-5, missing data; nominal alpha = 0.743.
_ = None
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]


def units_of(reliability):
    """Observer rows to per-unit lists (None = missing)."""
    return [[row[j] for row in reliability] for j in range(len(reliability[0]))]


def long_frame(labels: dict[str, list], external=False) -> pd.DataFrame:
    """{user: [label of item 0, item 1, ...]} (None = not labelled) as the long frame agreement reads."""
    rows = [(i, user, v) for user, values in labels.items() for i, v in enumerate(values) if v is not None]
    frame = pd.DataFrame(rows, columns=["item_id", "user", "value"])
    if external:
        frame["external_id"] = [f"ext-{i}" for i in frame["item_id"]]
    return frame


# --------------------------------------------------------------------------- published values


def test_fleiss_kappa_matches_the_wikipedia_worked_example():
    score = agreement.fleiss_kappa(WIKIPEDIA_FLEISS)
    assert score.statistic == agreement.FLEISS
    assert round(score.value, 3) == 0.210
    assert (score.n_items, score.n_labellers) == (10, 14)


def test_krippendorff_alpha_matches_the_published_example_with_missing_data():
    score = agreement.krippendorff_alpha(units_of(KRIPPENDORFF_2011))
    assert round(score.value, 3) == 0.743
    assert score.n_items == 11  # unit 12 has a single value: nothing to compare
    reference = krippendorff.alpha(reliability_data=np.array(KRIPPENDORFF_2011, dtype=float), level_of_measurement="nominal")
    assert score.value == pytest.approx(reference, abs=1e-12)


def test_the_same_example_through_the_long_frame_is_alpha():
    frame = long_frame({name: row for name, row in zip("ABCD", KRIPPENDORFF_2011)})
    score = agreement.overall(frame)
    assert score.statistic == agreement.ALPHA  # unequal numbers of labels per item
    assert round(score.value, 3) == 0.743
    assert (score.n_items, score.n_labellers) == (11, 4)


def test_fleiss_from_the_long_frame_equals_the_count_table():
    rng = np.random.default_rng(3)
    labels = {f"u{j}": list(rng.choice(["a", "b", "c"], size=30, p=[0.6, 0.3, 0.1])) for j in range(4)}
    frame = long_frame(labels)
    table = [[sum(labels[u][i] == c for u in labels) for c in "abc"] for i in range(30)]
    score = agreement.overall(frame)
    assert score.statistic == agreement.FLEISS
    assert score.value == pytest.approx(agreement.fleiss_kappa(table).value, abs=1e-12)


# --------------------------------------------------------------------------- against independent implementations

labels_st = st.sampled_from(["cat", "dog", "bird", 3])


@pytest.mark.fuzz
@given(st.lists(st.tuples(labels_st, labels_st), min_size=1, max_size=40))
def test_cohen_kappa_equals_sklearn(pairs):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    score = agreement.cohen_kappa(a, b)
    with warnings.catch_warnings():  # sklearn warns on single-class input; the property checks the value
        warnings.simplefilter("ignore")
        reference = cohen_kappa_score([str(x) for x in a], [str(x) for x in b])
    if np.isnan(reference):
        assert score.value is None and "undefined" in score.reason
    else:
        assert score.value == pytest.approx(reference, abs=1e-9)


reliability_st = st.integers(min_value=2, max_value=5).flatmap(
    lambda n_obs: st.lists(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n_obs, max_size=n_obs),
                           min_size=1, max_size=25))


@pytest.mark.fuzz
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(reliability_st)
def test_krippendorff_alpha_equals_the_krippendorff_package(units):
    score = agreement.krippendorff_alpha(units)
    pairable = [[v for v in u if v is not None] for u in units]
    pairable = [u for u in pairable if len(u) >= 2]
    values = {v for u in pairable for v in u}
    if not pairable:
        assert score.value is None and score.reason == agreement.NO_OVERLAP
        return
    if len(values) == 1:
        assert score.value is None and "undefined" in score.reason
        return
    data = np.array([[np.nan if v is None else v for v in u] for u in units], dtype=float).T
    reference = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert score.value == pytest.approx(reference, abs=1e-9)


def test_pairwise_and_per_labeller_match_sklearn_computed_by_hand():
    rng = np.random.default_rng(7)
    truth = rng.choice(["a", "b", "c"], size=60)
    labels = {}
    for user, noise in [("ann", 0.05), ("ben", 0.2), ("cid", 0.35), ("dee", 0.6)]:
        flip = rng.random(60) < noise
        labels[user] = [str(rng.choice(["a", "b", "c"])) if f else str(t) for f, t in zip(flip, truth)]
    frame = long_frame(labels)

    pairs = agreement.pairwise(frame)
    for row in pairs.itertuples():
        assert row.kappa == pytest.approx(cohen_kappa_score(labels[row.user_a], labels[row.user_b]), abs=1e-9)
    assert len(pairs) == 6 and set(pairs["items"]) == {60}

    table = agreement.per_labeller(frame).set_index("user")
    for user in labels:
        mine, majority, agree, others = [], [], 0, 0
        for i in range(60):
            votes = Counter(labels[o][i] for o in labels if o != user)
            top = votes.most_common()
            agree += votes[labels[user][i]]
            others += sum(votes.values())
            if len(top) == 1 or top[0][1] > top[1][1]:
                mine.append(labels[user][i])
                majority.append(top[0][0])
        assert table.loc[user, "kappa"] == pytest.approx(cohen_kappa_score(mine, majority), abs=1e-9)
        assert table.loc[user, "agreement"] == pytest.approx(agree / others)
        assert table.loc[user, "items"] == 60
    assert list(table.index)[0] == "dee"  # the noisiest labeller comes first (lowest kappa)
    assert list(table.index)[-1] == "ann"


def test_per_class_is_fleiss_per_category_and_specific_agreement():
    rng = np.random.default_rng(11)
    labels = {f"u{j}": list(rng.choice(["x", "y", "z"], size=40, p=[0.5, 0.3, 0.2])) for j in range(3)}
    frame = long_frame(labels)
    counts = np.array([[sum(labels[u][i] == c for u in labels) for c in "xyz"] for i in range(40)], dtype=float)
    n, n_items = 3, 40
    table = agreement.per_class(frame).set_index("label")
    for j, c in enumerate("xyz"):
        p = counts[:, j].sum() / (n_items * n)
        fleiss_j = 1 - (counts[:, j] * (n - counts[:, j])).sum() / (n_items * n * (n - 1) * p * (1 - p))  # Fleiss (1971), eq. 10
        specific = (counts[:, j] * (counts[:, j] - 1)).sum() / (counts[:, j] * (n - 1)).sum()
        assert table.loc[c, "value"] == pytest.approx(fleiss_j, abs=1e-9)
        assert table.loc[c, "specific_agreement"] == pytest.approx(specific)
        assert table.loc[c, "votes"] == counts[:, j].sum()
        assert table.loc[c, "statistic"] == agreement.FLEISS
    assert list(table["votes"]) == sorted(table["votes"], reverse=True)


# --------------------------------------------------------------------------- properties

user_names = ["ann", "ben", "cid", "dee"]


@pytest.mark.fuzz
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=30).filter(lambda xs: len(set(xs)) > 1),
       st.integers(min_value=2, max_value=4))
def test_perfect_agreement_is_one_for_every_statistic(truth, k):
    frame = long_frame({u: truth for u in user_names[:k]})
    report = agreement.agreement_report(frame)
    assert report.overall.statistic == (agreement.COHEN if k == 2 else agreement.FLEISS)
    assert report.overall.value == pytest.approx(1.0)
    assert report.alpha.value == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in report.per_labeller["kappa"])
    assert (report.disagreements["disagreement"] == 0).all() and not report.disagreements["tie"].any()


@pytest.mark.fuzz
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c"]), min_size=3, max_size=3), min_size=2, max_size=30))
def test_statistics_are_bounded_and_order_free(rows):
    frame = long_frame({u: [r[j] for r in rows] for j, u in enumerate(user_names[:3])})
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    renamed = frame.assign(value=frame["value"].map({"a": "b", "b": "c", "c": "a"}))
    first = agreement.overall(frame)
    for other in (agreement.overall(shuffled), agreement.overall(renamed)):
        assert (first.value is None) == (other.value is None)
        if first.value is not None:
            assert other.value == pytest.approx(first.value)
    if first.value is not None:
        assert -1.0 <= first.value <= 1.0 + 1e-12


# --------------------------------------------------------------------------- choice of statistic and degenerate cases


def test_the_statistic_follows_the_shape_of_the_data():
    assert agreement.overall(long_frame({"ann": list("abab"), "ben": list("abba")})).statistic == agreement.COHEN
    assert agreement.overall(long_frame({"ann": list("abab"), "ben": list("abba"), "cid": list("aabb")})).statistic == agreement.FLEISS
    # k = 2 with labellers rotating: not the same two people on every item, so not Cohen
    rotating = long_frame({"ann": ["a", "b", None], "ben": [None, "b", "a"], "cid": ["a", None, "b"]})
    assert agreement.overall(rotating).statistic == agreement.FLEISS
    unequal = long_frame({"ann": list("abab"), "ben": list("abba"), "cid": ["a", "a", None, None]})
    assert agreement.overall(unequal).statistic == agreement.ALPHA
    with pytest.raises(ValidationError, match="Fleiss' kappa needs the same number"):
        agreement.overall(unequal, statistic=agreement.FLEISS)
    with pytest.raises(ValidationError, match="exactly two labellers"):
        agreement.overall(unequal, statistic=agreement.COHEN)


@pytest.mark.parametrize("labels, reason", [
    ({}, agreement.NO_OVERLAP),
    ({"ann": list("abc")}, agreement.NO_OVERLAP),
    ({"ann": ["a", "b", None], "ben": [None, None, "c"]}, agreement.NO_OVERLAP),
    ({"ann": list("aaa"), "ben": list("aaa")}, "every label is 'a'"),
    ({"ann": list("aaa"), "ben": list("aaa"), "cid": list("aaa")}, "every label is 'a'"),
    ({"ann": list("aaa"), "ben": list("aaa"), "cid": ["a", None, None]}, "every label is 'a'"),
], ids=["nothing", "one labeller", "no shared item", "one class, two", "one class, three", "one class, unequal"])
def test_degenerate_cases_are_undefined_with_a_reason(labels, reason):
    frame = long_frame(labels) if labels else pd.DataFrame(columns=["item_id", "user", "value"])
    report = agreement.agreement_report(frame)
    assert report.overall.value is None and reason in report.overall.reason
    assert agreement.describe(report.overall).startswith("undefined: ")
    assert report.alpha.value is None
    for table in (report.per_labeller, report.pairwise, report.per_class):
        assert "kappa" not in table or table["kappa"].isna().all()


def test_one_class_per_labeller_and_per_class_say_why():
    frame = long_frame({"ann": list("aaab"), "ben": list("aaaa"), "cid": list("aaaa")})
    classes = agreement.per_class(frame).set_index("label")
    assert classes.loc["b", "votes"] == 1 and classes.loc["b", "specific_agreement"] == 0.0
    assert classes.loc["a", "value"] is not None
    labellers = agreement.per_labeller(frame).set_index("user")
    assert labellers.loc["ben", "kappa"] is None or np.isnan(labellers.loc["ben", "kappa"])
    assert "one class only" in labellers.loc["ben", "reason"]


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValidationError, match="same number of labels"):
        agreement.fleiss_kappa([[2, 0], [1, 2]])
    with pytest.raises(ValidationError, match="whole numbers"):
        agreement.fleiss_kappa([[1.5, 0.5]])
    with pytest.raises(ValidationError, match="one label per item"):
        agreement.cohen_kappa(["a"], ["a", "b"])
    with pytest.raises(ValidationError, match="missing: value"):
        agreement.overall(pd.DataFrame({"item_id": [1], "user": ["ann"]}))


def test_the_importer_is_not_a_labeller():
    frame = long_frame({"ann": list("abab"), IMPORT_USER: list("bbbb")})
    assert not agreement.has_overlap(frame)
    assert agreement.overall(frame).reason == agreement.NO_OVERLAP
    with_two = long_frame({"ann": list("abab"), "ben": list("abab"), IMPORT_USER: list("bbbb")})
    score = agreement.overall(with_two)
    assert score.statistic == agreement.COHEN and score.value == pytest.approx(1.0) and score.n_labellers == 2


# --------------------------------------------------------------------------- disagreements and multi-label


def test_items_are_ranked_by_disagreement_with_ties_flagged():
    frame = long_frame({"ann": list("aaaab"), "ben": list("abaab"), "cid": list("acbab"), "dee": list("abbbb")}, external=True)
    table = agreement.disagreements(frame)
    # item 2: a, a, b, b -> a tie, half against; item 1: a, b, c, b -> b wins 2 of 4
    assert list(table["item_id"][:2]) == [2, 1]
    first = table.iloc[0]
    assert first["tie"] and first["disagreement"] == 0.5 and first["votes"] == {"a": 2, "b": 2}
    assert first["consensus"] == "a"  # the label given first, as training and export use
    assert first["external_id"] == "ext-2"
    assert table.set_index("item_id").loc[1, "entropy"] == pytest.approx(1.5)
    assert list(table["item_id"][2:]) == [3, 0, 4]  # 1 of 4 against, then the unanimous ones by id
    assert list(table["disagreement"][2:]) == [0.25, 0.0, 0.0]
    for row in table.itertuples():
        values = list(frame[frame["item_id"] == row.item_id]["value"])
        label, tie = queue.consensus(values)
        assert (row.consensus, row.tie) == (label, tie)
    assert agreement.disagreements(frame, min_labels=5).empty


def test_multi_label_is_compared_per_option_as_yes_no():
    rng = np.random.default_rng(5)
    options = ["red", "green", "blue"]
    users = ["ann", "ben", "cid"]
    picks = {u: [sorted(o for o in options if rng.random() < 0.4) for _ in range(25)] for u in users}
    frame = long_frame(picks)
    report = agreement.agreement_report(frame, "multi", options)
    classes = report.per_class.set_index("label")
    pooled_units = []
    for o in options:
        yes_no = long_frame({u: ["yes" if o in v else "no" for v in picks[u]] for u in users})
        expected = agreement.overall(yes_no)
        assert classes.loc[o, "value"] == pytest.approx(expected.value)
        assert classes.loc[o, "statistic"] == agreement.FLEISS
        assert classes.loc[o, "votes"] == sum(o in v for u in users for v in picks[u])
        pooled_units += [[o in picks[u][i] for u in users] for i in range(25)]
    assert report.overall.statistic == agreement.FLEISS
    assert report.overall.n_items == 25
    table = [[sum(unit), len(unit) - sum(unit)] for unit in pooled_units]
    assert report.overall.value == pytest.approx(agreement.fleiss_kappa(table).value)
    assert report.alpha.value == pytest.approx(agreement.krippendorff_alpha(pooled_units).value)

    dis = agreement.disagreements(frame, "multi")
    for row in dis.itertuples():
        values = [picks[u][row.item_id] for u in users]
        chosen, tie = queue.consensus(values, "multi")
        assert row.consensus == ", ".join(chosen) and row.tie == tie
        assert row.votes == {o: sum(o in v for v in values) for o in options if any(o in v for v in values)}


def test_describe_reads_the_figure_in_words():
    def score(v, kind=agreement.FLEISS):
        return agreement.Score(kind, v, 10, 3)

    assert agreement.describe(score(-0.1)) == "poor agreement (less than chance)"
    assert agreement.describe(score(0.15)) == "slight agreement"
    assert agreement.describe(score(0.5)) == "moderate agreement"
    assert agreement.describe(score(0.9)) == "almost perfect agreement"
    assert agreement.describe(score(0.7, agreement.ALPHA)).startswith("tentative")
    assert agreement.describe(score(0.85, agreement.ALPHA)).startswith("reliable")


def test_previews_are_short():
    assert preview("a  long\ntext " * 20, 20) == "a long text a long …"  # 20 characters with the ellipsis
    assert preview(np.zeros((8, 8))) == "array 8 x 8"
    assert preview({"age": 3, "name": "x"}) == "age=3, name=x"


# --------------------------------------------------------------------------- from a real database


def test_reads_three_labellers_from_the_database(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "pets", options=["cat", "dog"], annotations_per_item=3)
        queue.add_items(s, project, [f"pet {i}" for i in range(4)], external_ids=[f"p{i}" for i in range(4)],
                        labels=["dog", None, None, None])
        ids = [ensure_user(s, name, role=Role.labeller) for name in ("ann", "ben", "cid")]
    wanted = {"ann": ["cat", "cat", "dog", "dog"], "ben": ["cat", "dog", "dog", "dog"], "cid": ["cat", "dog", "cat", "dog"]}
    for user_id, name in zip(ids, wanted):
        while True:
            with session_scope(engine) as s:
                task = queue.claim_next(s, project, user_id)
                if task is None:
                    break
                queue.submit(s, project, user_id, task.item_id, wanted[name][int(task.external_id[1:])])
    # p0's imported label counts towards its 3 annotations, so only ann and ben label it
    human = {name: [None if (name, i) == ("cid", 0) else v for i, v in enumerate(values)] for name, values in wanted.items()}
    frame = annotations_long(engine, project)
    assert len(frame) == 11 and IMPORT_USER not in set(frame["user"])
    assert list(frame.columns) == ["item_id", "external_id", "user", "value", "created_at"]
    report = agreement.agreement_report(frame, project.label_mode, project.options, min_labels=3)
    units = [[human[u][i] for u in human] for i in range(4)]
    assert report.overall.statistic == agreement.ALPHA and report.overall.n_items == 4 and report.overall.n_labellers == 3
    assert report.overall.value == pytest.approx(agreement.krippendorff_alpha(units).value)
    assert list(report.disagreements["external_id"]) == ["p1", "p2", "p3"]  # p0 has two labellers' labels only
    assert list(report.disagreements["tie"]) == [False] * 3
    assert report.disagreements["disagreement"].tolist() == pytest.approx([1 / 3, 1 / 3, 0])
    previews = item_previews(engine, project, report.disagreements["item_id"])
    assert sorted(previews.values()) == ["pet 1", "pet 2", "pet 3"]
    shown = project_agreement(engine, project, top=2)  # what the Progress page shows: min_labels from annotations_per_item
    assert shown.overall == report.overall and shown.disagreements.equals(report.disagreements.head(2))


@pytest.mark.fuzz
@given(st.lists(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c"])), min_size=4, max_size=4), min_size=1, max_size=15),
       st.booleans())
def test_disagreement_table_matches_a_count_of_each_item(rows, multi):
    """The vectorised table equals counting each item's votes by hand (and queue.consensus), in both label modes."""
    if multi:
        labels = {u: [None if r[j] is None else sorted({r[j], r[(j + 1) % 4] or r[j]}) for r in rows] for j, u in enumerate(user_names)}
    else:
        labels = {u: [r[j] for r in rows] for j, u in enumerate(user_names)}
    frame = long_frame(labels)
    mode = "multi" if multi else "single"
    table = agreement.disagreements(frame, mode).set_index("item_id")
    expected_items = {i for i in range(len(rows)) if sum(labels[u][i] is not None for u in user_names) >= 2}
    assert set(table.index) == expected_items
    for i in expected_items:
        values = [labels[u][i] for u in user_names if labels[u][i] is not None]
        n = len(values)
        label, tie = queue.consensus(values, mode)
        row = table.loc[i]
        assert row["labels"] == n and row["tie"] == tie
        assert row["consensus"] == (", ".join(label) if multi else label)
        if multi:
            ticked = Counter(o for v in values for o in v)
            against = [min(c, n - c) / n for c in ticked.values()]
            assert row["votes"] == dict(ticked.most_common())
            assert row["disagreement"] == pytest.approx(sum(against) / len(against) if against else 0.0)
        else:
            counts = Counter(values)
            p = np.array(list(counts.values())) / n
            assert row["votes"] == dict(counts.most_common())
            assert row["disagreement"] == pytest.approx(1 - max(counts.values()) / n)
            assert row["entropy"] == pytest.approx(float(-(p * np.log2(p)).sum()))
    top = agreement.disagreements(frame, mode, top=2)
    assert top.equals(agreement.disagreements(frame, mode).head(2))


def test_pairs_that_share_nothing_or_one_class_have_no_kappa():
    frame = long_frame({"ann": ["a", "b", "a", None], "ben": ["a", "b", None, None], "cid": [None, None, "a", "a"],
                        "dee": [None, None, None, "a"]})
    pairs = agreement.pairwise(frame).set_index(["user_a", "user_b"])
    assert pairs.loc[("ann", "ben"), "kappa"] == pytest.approx(1.0) and pairs.loc[("ann", "ben"), "items"] == 2
    assert pd.isna(pairs.loc[("ann", "cid"), "kappa"]) and pairs.loc[("ann", "cid"), "items"] == 1  # both said "a": one class
    assert pd.isna(pairs.loc[("ben", "cid"), "kappa"]) and pairs.loc[("ben", "cid"), "items"] == 0
    assert len(pairs) == 6
