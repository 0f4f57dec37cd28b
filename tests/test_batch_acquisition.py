"""Batch-aware acquisition: the top of the queue is not a row of near-duplicates; off, it is plain margin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from superintendent import queue
from superintendent.acquisition_functions import (
    acquisition_scores,
    get_acquisition_function,
    margin,
    margin_diverse,
    split_name,
)
from superintendent.auth import ensure_user
from superintendent.al.diversity import (
    TopCandidates,
    diverse_order,
    diverse_ranking,
    project_features,
)
from superintendent.learning import RetrainOptions
from superintendent.orchestration import retrain_project
from superintendent.store import Item, Role, RunStatus, session_scope
from superintendent.validation import ValidationError

from labelling_logs import people_label

DIGITS = load_digits()


def twins_problem(n_twins=20, n_other=200, seed=0):
    """Probabilities and features where the most uncertain rows are near-identical twins of one point."""
    rng = np.random.default_rng(seed)
    twins = rng.normal(0, 1, size=(1, 10)) + rng.normal(0, 1e-3, size=(n_twins, 10))
    others = rng.normal(0, 1, size=(n_other, 10)) * 3
    features = np.vstack([others[:100], twins, others[100:]])
    top = np.concatenate([rng.uniform(0.6, 0.99, 100), rng.uniform(0.5, 0.51, n_twins), rng.uniform(0.6, 0.99, n_other - 100)])
    proba = np.column_stack([top, 1 - top])
    return proba, features, np.arange(100, 100 + n_twins)


def min_pairwise(x):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return d[np.triu_indices(len(x), 1)].min()


def test_names_and_the_plain_fallbacks():
    assert split_name("Margin_Diverse") == ("margin", True) and split_name("entropy") == ("entropy", False)
    with pytest.raises(ValueError, match="unknown acquisition function 'fancy_diverse'"):
        split_name("fancy_diverse")
    proba, features, _ = twins_problem()
    np.testing.assert_array_equal(acquisition_scores("margin_diverse", proba), acquisition_scores("margin", proba))
    # without features, or with a window of one labeller, the order is plain margin
    np.testing.assert_array_equal(margin_diverse(proba), margin(proba))
    np.testing.assert_array_equal(margin_diverse(proba, features=features, window=1), margin(proba))
    np.testing.assert_array_equal(margin_diverse(proba, shuffle_prop=0.3, rng=4), margin(proba, shuffle_prop=0.3, rng=4))
    assert get_acquisition_function("margin_diverse") is margin_diverse


def test_the_first_round_is_not_near_duplicates():
    proba, features, twins = twins_problem()
    plain = margin(proba)[:8]
    assert set(plain) <= set(twins)  # plain margin hands out eight twins at once
    assert min_pairwise(features[plain]) < 0.01
    diverse = margin_diverse(proba, features=features, window=8)
    assert sorted(diverse.tolist()) == list(range(len(proba)))
    assert len(set(diverse[:8]) & set(twins)) == 1  # one twin per round of eight
    assert min_pairwise(features[diverse[:8]]) > 1.0
    # every later round also gets at most one twin while other candidates remain
    for start in range(0, 64, 8):
        assert len(set(diverse[start:start + 8]) & set(twins)) <= 1


def test_a_round_is_one_item_per_group_of_the_most_uncertain_and_comes_from_them():
    """Eight tight groups among the 80 most uncertain items (one of 40 items, seven of 5 or 6): a round of eight takes one
    item of each group, the most typical one (nearest its group's centre), not eight of the big group; and every round
    comes from the 10 x 8 most uncertain items left, so diversity never reaches far down the uncertainty order."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(8, 5))
    sizes = [40, 6, 6, 6, 6, 6, 5, 5]
    group = np.repeat(np.arange(8), sizes)
    rng.shuffle(group)
    features = np.vstack([centres[group] + rng.normal(0, 0.1, size=(80, 5)), rng.normal(0, 10, size=(400, 5))])
    scores = np.concatenate([np.linspace(1.0, 0.9, 80), np.linspace(0.5, 0.0, 400)])
    order = diverse_ranking(scores, features, window=8, n_candidates=480)
    first = order[:8]
    assert sorted(group[first].tolist()) == list(range(8))
    for g in range(8):
        members = np.flatnonzero(group == g)
        typical = members[np.argmin(((features[members] - features[members].mean(axis=0)) ** 2).sum(axis=1))]
        assert typical in first
    assert np.all(np.diff(scores[first]) <= 0)  # within a round, the most uncertain first
    plain = np.argsort(-scores, kind="stable")
    for start in range(0, 480, 8):  # each round from the 80 most uncertain left
        left = plain[~np.isin(plain, order[:start])]
        assert set(order[start:start + 8]) <= set(left[:80])


def test_deterministic_and_only_the_candidates_are_reordered():
    proba, features, _ = twins_problem(n_other=500)
    scores = acquisition_scores("margin", proba)
    a = diverse_ranking(scores, features, window=8, n_candidates=50, rng=3)
    b = diverse_ranking(scores, features, window=8, n_candidates=50, rng=3)
    np.testing.assert_array_equal(a, b)
    plain = np.argsort(-scores, kind="stable")
    assert set(a[:50]) == set(plain[:50])
    np.testing.assert_array_equal(a[50:], plain[50:])  # below the candidates: the uncertainty order
    np.testing.assert_array_equal(diverse_order(features[plain[:50]], window=1), np.arange(50))
    np.testing.assert_array_equal(project_features(np.ones((3, 100)), 8, rng=1), project_features(np.ones((3, 100)), 8, rng=1))
    assert project_features(np.ones((3, 100)), 8).shape == (3, 8)
    with pytest.raises(ValueError, match="window must be a whole number"):
        diverse_order(features, window=0)


def test_streamed_candidates_equal_one_shot_and_features_are_read_only_for_candidates():
    rng = np.random.default_rng(1)
    n, d = 200_000, 16
    scores = rng.random(n)
    features = rng.normal(size=(n, d))
    asked = []

    def features_of(start):
        def read(rows):
            asked.append(len(rows))
            return features[start + np.asarray(rows)]
        return read

    top = TopCandidates(500)
    for start in range(0, n, 30_000):
        top.add(scores[start:start + 30_000], features_of(start))
    streamed = top.order(scores, window=8)
    np.testing.assert_array_equal(streamed, diverse_ranking(scores, features, window=8, n_candidates=500))
    assert max(asked) <= 500  # never the features of a whole batch
    assert sorted(streamed[:1000].tolist()) != list(range(1000)) and len(np.unique(streamed)) == n


def duplicated_digits_project(engine, acquisition, n_labelled=100, n_twins=12, n_other=150, name="digits", **settings):
    """Labelled digits, then twins of the digit the model is least sure about, then other digits."""
    x, y = DIGITS.data, DIGITS.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[:n_labelled], y[:n_labelled])
    pool = np.arange(n_labelled, n_labelled + 400)
    unsure = pool[margin(model.predict_proba(x[pool]))[0]]
    rng = np.random.default_rng(0)
    twins = [x[unsure] + rng.normal(0, 0.01, size=64) for _ in range(n_twins)]
    others = [x[i] for i in pool if i != unsure][:n_other]
    items = [x[i] for i in range(n_labelled)] + twins + others
    ids = [f"l{i}" for i in range(n_labelled)] + [f"twin{i}" for i in range(n_twins)] + [f"o{i}" for i in range(len(others))]
    labels = [int(v) for v in y[:n_labelled]] + [None] * (n_twins + len(others))
    with session_scope(engine) as s:
        project = queue.create_project(s, name, options=list(range(10)), acquisition_function=acquisition, shuffle_prop=0.0,
                                       **settings)
        queue.add_items(s, project, items, labels=labels, external_ids=ids)
    return project


def claimed_external_ids(engine, project, n):
    """Eight labellers claim at the same moment."""
    out = []
    for k in range(n):
        with session_scope(engine) as s:
            user = ensure_user(s, f"labeller{k}", role=Role.labeller)
            out.append(queue.claim_next(s, project, user).external_id)
    return out


def test_retrain_with_margin_diverse_hands_eight_labellers_different_items(engine):
    options = RetrainOptions(model=make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)))
    plain = duplicated_digits_project(engine, "margin", name="plain")
    run = retrain_project(engine, plain, options)
    assert run.status == RunStatus.succeeded.value, run.message
    assert sum(e.startswith("twin") for e in claimed_external_ids(engine, plain, 8)) >= 6

    diverse = duplicated_digits_project(engine, "margin_diverse", name="diverse")
    run = retrain_project(engine, diverse, options)
    assert run.status == RunStatus.succeeded.value, run.message
    assert run.acquisition_function == "margin_diverse" and run.signals["diversity_window"] == 8
    first = claimed_external_ids(engine, diverse, 8)
    assert sum(e.startswith("twin") for e in first) == 1
    with session_scope(engine, write=False) as s:
        n_ranked = s.execute(sa.select(sa.func.count()).select_from(Item).where(Item.project_id == diverse.id, sa.not_(Item.done))).scalar_one()
    assert run.n_ranked == n_ranked


def test_the_window_comes_from_the_project_settings_and_is_checked(engine):
    options = RetrainOptions(model=make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)))
    one = duplicated_digits_project(engine, "margin_diverse", name="one", diversity_window=1)
    run = retrain_project(engine, one, options)
    assert run.signals["diversity_window"] == 1
    assert sum(e.startswith("twin") for e in claimed_external_ids(engine, one, 8)) >= 6  # a window of one is plain margin
    with pytest.raises(ValidationError, match="diversity_window must be a whole number"):
        duplicated_digits_project(engine, "margin_diverse", name="bad", diversity_window="eight")
    bad_option = RetrainOptions(model=options.model, diversity_window=0)  # the retrain checks its own option too
    run = retrain_project(engine, one, bad_option)
    assert run.status == RunStatus.failed.value and "diversity_window must be a whole number" in run.message
    with pytest.raises(ValidationError, match="unknown acquisition function 'margin_fancy'"), session_scope(engine) as s:
        queue.create_project(s, "nope", acquisition_function="margin_fancy")


def test_without_a_window_a_round_is_the_labels_given_before_the_next_retrain(engine, monkeypatch):
    """A round holds the items labelled before the model sees any of them: the labels people give between this retrain
    and the next (labels_before_next_retrain), 8 when there are no recent labels, never more than MAX_WINDOW."""
    from superintendent.al import diversity
    from superintendent.learning import retrain as retrain_module

    options = RetrainOptions(model=make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)))
    project = duplicated_digits_project(engine, "margin_diverse", name="rounds")
    signals = retrain_project(engine, project, options).signals
    assert (signals["diversity_window"], signals["diversity_window_source"]) == (8, "default")  # imported labels: nobody labelling yet
    people_label(engine, project, 12, lambda task, k: k % 10)  # retrained by hand: the gap since the last retrain started is the estimate
    run = retrain_project(engine, project, options)
    assert run.status == RunStatus.succeeded.value, run.message
    assert (run.signals["diversity_window"], run.signals["diversity_window_source"]) == (12, "expected")
    signals = retrain_project(engine, project, options).signals  # pressed again at once: no label since, the default
    assert (signals["diversity_window"], signals["diversity_window_source"]) == (8, "default")
    with session_scope(engine) as s:  # every 30 labels: 30 (the head written counts the labels while a retrain runs too)
        project = queue.update_project(s, queue.get_project(s, project.id), retrain_interval_n_labels=30)
    assert retrain_project(engine, project, options).signals["diversity_window"] == 30
    with session_scope(engine) as s:  # every 5 labels and 30 minutes: the 12 labels of the last 30 minutes, more than 5
        project = queue.update_project(s, queue.get_project(s, project.id), retrain_interval_n_labels=5,
                                       retrain_interval_seconds=1800.0)
    assert retrain_project(engine, project, options).signals["diversity_window"] == 12
    monkeypatch.setattr(retrain_module, "MAX_WINDOW", 10)
    assert retrain_project(engine, project, options).signals["diversity_window"] == 10
    assert diversity.MAX_WINDOW * diversity.ROUND_POOL == diversity.DEFAULT_CANDIDATES
    with session_scope(engine) as s:  # a window set for the project wins
        project = queue.update_project(s, queue.get_project(s, project.id), diversity_window=3)
    signals = retrain_project(engine, project, options).signals
    assert (signals["diversity_window"], signals["diversity_window_source"]) == (3, "set")


@pytest.mark.parametrize("n_labels", [40, 150])  # the table preset's two stages: logistic regression, then the soft vote
def test_the_table_presets_diversity_view_is_its_scaled_columns(n_labels):
    """Distances for the diversity step are taken in what the table preset's classifier sees (numbers scaled, categories
    one-hot), not in the raw table, where a population in the millions would decide every distance alone."""
    from superintendent.learning.presets import make_preset, model_features

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"population": rng.normal(3e7, 1e7, 300), "life_expectancy": rng.normal(65, 10, 300),
                          "continent": rng.choice(["Africa", "Asia", "Europe"], 300)})
    labels = np.where(table["life_expectancy"] > 65, "long", "short")
    model = make_preset("gradient_boosting").fit(table[:n_labels], labels[:n_labels])
    view = model_features(model, table[n_labels:], model.predict_proba(table[n_labels:]))
    view = np.asarray(view.toarray() if hasattr(view, "toarray") else view, dtype=float)
    assert view.shape == (300 - n_labels, 2 + 3)  # two scaled numbers, three one-hot continents
    assert view[:, :2].std(axis=0) == pytest.approx([1.0, 1.0], abs=0.35)
    assert set(np.unique(view[:, 2:])) <= {0.0, 1.0}
