"""Acquisition functions return a visiting order: row indices, most in need of a label first."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from superintendent import acquisition_functions as af
from superintendent.al import acquisition
from superintendent.acquisition_functions import (
    ACQUISITION_FUNCTIONS,
    acquisition_scores,
    certainty,
    entropy,
    get_acquisition_function,
    margin,
    visiting_order,
)

FUNCTIONS = sorted(ACQUISITION_FUNCTIONS.items())


def test_public_names():
    assert set(af.__all__) >= {"entropy", "margin", "certainty", "visiting_order", "get_acquisition_function",
                               "ACQUISITION_FUNCTIONS"}
    assert set(acquisition._SCORE_FUNCTIONS) == {"certainty", "entropy", "margin"}
    assert all(getattr(af, name) is getattr(acquisition, name) for name in af.__all__)  # the original import path, re-exported
    assert set(ACQUISITION_FUNCTIONS) == {"certainty", "entropy", "margin", "certainty_diverse", "entropy_diverse", "margin_diverse"}


def test_margin_reference_example():
    p = [[0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.33, 0.33, 0.34], [0.01, 0.01, 0.98]]
    assert margin(p).tolist() == [2, 1, 0, 3]


def test_margin_returns_visiting_order_not_rank_per_row():
    # margins .5, .1, .3: row 1 first, then row 2, then row 0.
    # A rank per row would be [2, 0, 1]; the visiting order is [1, 2, 0].
    result = margin([[0.75, 0.25], [0.55, 0.45], [0.65, 0.35]])
    assert result.tolist() == [1, 2, 0]
    assert result.dtype == np.intp


def test_entropy_highest_first():
    p = [[0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]
    assert entropy(p).tolist() == [1, 2, 0, 3]
    scores = acquisition_scores("entropy", p)
    np.testing.assert_allclose(scores[[1, 2, 3]], [np.log(3), np.log(2), 0.0])


def test_certainty_lowest_top_probability_first():
    p = [[0.6, 0.4], [0.9, 0.1], [0.5, 0.5], [0.7, 0.3]]
    assert certainty(p).tolist() == [2, 0, 3, 1]
    np.testing.assert_allclose(acquisition_scores("certainty", p), [0.4, 0.1, 0.5, 0.3])


@pytest.mark.parametrize(("name", "function"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_ties_break_by_original_index(name, function):
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.9, 0.1], [0.5, 0.5]])
    assert function(p).tolist() == [0, 2, 4, 1, 3]


def test_multi_output_scores_are_averaged_across_outputs():
    # output 0 alone puts sample 0 first (margin 0 < 0.2);
    # averaged over both outputs sample 0 has margin 0.5 > 0.2, so sample 1 comes first.
    out0 = np.array([[0.5, 0.5], [0.6, 0.4]])
    out1 = np.array([[1.0, 0.0], [0.6, 0.4]])
    p = np.stack([out0, out1], axis=2)  # (n_samples, n_classes, n_outputs)
    assert p.shape == (2, 2, 2)
    assert margin(out0).tolist() == [0, 1]
    assert margin(p).tolist() == [1, 0]
    assert entropy(out0).tolist() == [0, 1]
    assert entropy(p).tolist() == [1, 0]
    assert certainty(out0).tolist() == [0, 1]
    assert certainty(p).tolist() == [1, 0]
    np.testing.assert_allclose(acquisition_scores("margin", p), [-0.5, -0.2])


def test_single_class_column():
    p = [[1.0], [0.3], [0.7]]
    # margin against a second best of 0: 1.0, 0.3, 0.7
    assert margin(p).tolist() == [1, 2, 0]
    assert certainty(p).tolist() == [1, 2, 0]
    assert entropy(p).shape == (3,)


@pytest.mark.parametrize(("name", "function"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
@pytest.mark.parametrize("empty", [[], np.empty((0, 3)), np.empty((0, 2, 4))], ids=["list", "2d", "3d"])
def test_empty_input_gives_empty_int_order(name, function, empty):
    result = function(empty)
    assert result.shape == (0,)
    assert result.dtype == np.intp
    assert acquisition_scores(name, empty).shape == (0,)


@pytest.mark.parametrize(
    ("probabilities", "message"),
    [
        ([0.1, 0.9, 0.5, 0.5, 0.2], r"must have shape \(n_samples, n_classes\) or \(n_samples, n_classes, n_outputs\); got shape \(5,\)"),
        (np.zeros((2, 2, 2, 2)), r"got shape \(2, 2, 2, 2\)"),
        (np.empty((3, 0)), "at least one class"),
        ([[0.5, 0.5]] * 3 + [[np.nan, 0.5]], "probabilities must be finite; got NaN in row 3"),
        ([[0.5, 0.5], [np.inf, 0.5]], "probabilities must be finite; got inf in row 1"),
        ([[0.5, 0.5], [-0.2, 1.0]], "probabilities must be non-negative; got -0.2 in row 1"),
        ([[1.5, 0.5]], "probabilities must be at most 1; got 1.5 in row 0"),
        (np.stack([np.full((3, 2), 0.5), [[0.5, 0.5], [0.5, 0.5], [0.5, -1.0]]], axis=2), "non-negative; got -1 in row 2"),
        ([["a", "b"]], "numeric array"),
        ([[0.1, 0.9], [0.5]], "numeric array"),
    ],
    ids=["1d", "4d", "no-classes", "nan", "inf", "negative", "above-one", "3d-negative", "strings", "ragged"],
)
def test_bad_probabilities_raise_clear_errors(probabilities, message):
    for function in ACQUISITION_FUNCTIONS.values():
        with pytest.raises(ValueError, match=message):
            function(probabilities)
    with pytest.raises(ValueError, match=message):
        acquisition_scores("margin", probabilities)


def test_rows_need_not_sum_to_one_and_rounding_above_one_is_tolerated():
    assert margin([[0.2, 0.2], [0.9, 0.0]]).tolist() == [0, 1]
    assert margin([[1 + 1e-9, 0.0], [0.5, 0.5]]).tolist() == [1, 0]


def test_visiting_order_sorts_descending_and_stable():
    scores = np.array([0.1, 0.5, 0.5, -1.0, 0.9])
    assert visiting_order(scores).tolist() == [4, 1, 2, 0, 3]
    assert visiting_order([]).tolist() == []


@pytest.mark.parametrize("shuffle_prop", [-0.1, 1.5, float("nan"), "0.5", True])
def test_visiting_order_rejects_bad_shuffle_prop(shuffle_prop):
    with pytest.raises(ValueError, match="shuffle_prop must be"):
        visiting_order([1.0, 2.0], shuffle_prop=shuffle_prop)
    with pytest.raises(ValueError, match="shuffle_prop must be"):
        margin([[0.5, 0.5]], shuffle_prop=shuffle_prop)


def test_visiting_order_rejects_bad_scores_and_rng():
    with pytest.raises(ValueError, match=r"scores must be 1-D.*got shape \(2, 2\)"):
        visiting_order(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="got NaN in row 1"):
        visiting_order([0.0, np.nan])
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, an int seed or None; got str"):
        visiting_order([0.0, 1.0], rng="seed")


def test_shuffle_prop_zero_is_deterministic_whatever_the_rng():
    scores = np.random.default_rng(1).random(50)
    expected = np.argsort(-scores, kind="stable")
    for rng in (None, 0, 123, np.random.default_rng(7)):
        np.testing.assert_array_equal(visiting_order(scores, 0.0, rng), expected)


def test_zero_shuffle_draws_nothing_from_a_passed_generator():
    gen = np.random.default_rng(3)
    state = gen.bit_generator.state
    visiting_order([1.0, 2.0, 3.0], 0.0, gen)
    assert gen.bit_generator.state == state


@pytest.mark.parametrize("shuffle_prop", [0.1, 0.3, 0.5, 1.0])
def test_shuffle_gives_permutation_with_right_number_of_random_picks(shuffle_prop):
    n = 200
    scores = -np.arange(n, dtype=float)  # deterministic order is 0, 1, ..., n-1
    result = visiting_order(scores, shuffle_prop, rng=42)
    assert sorted(result.tolist()) == list(range(n))
    moved = np.count_nonzero(result != np.arange(n))
    assert moved <= round(shuffle_prop * n)
    assert moved > 0


def test_shuffle_same_seed_same_result_and_full_shuffle_is_random():
    scores = np.linspace(0, 1, 100)
    a = visiting_order(scores, 0.5, rng=5)
    np.testing.assert_array_equal(a, visiting_order(scores, 0.5, rng=5))
    np.testing.assert_array_equal(a, visiting_order(scores, 0.5, rng=np.random.default_rng(5)))
    assert not np.array_equal(a, visiting_order(scores, 0.5, rng=6))
    full = visiting_order(scores, 1.0, rng=0)
    assert sorted(full.tolist()) == list(range(100))
    assert not np.array_equal(full, visiting_order(scores))


def test_public_functions_pass_shuffle_and_rng_through():
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=60)
    for name, function in FUNCTIONS:
        expected = visiting_order(acquisition_scores(name, p), 0.2, rng=9)
        np.testing.assert_array_equal(function(p, shuffle_prop=0.2, rng=9), expected)


@pytest.mark.fuzz
@given(
    p=hnp.arrays(np.float64, st.tuples(st.integers(0, 30), st.integers(1, 5)), elements=st.floats(0, 1)),
    batch=st.integers(1, 7),
    name=st.sampled_from(sorted(ACQUISITION_FUNCTIONS)),
)
def test_batched_scores_then_visiting_order_equals_one_shot(p, batch, name):
    parts = [acquisition_scores(name, p[i:i + batch]) for i in range(0, len(p), batch)]
    scores = np.concatenate(parts) if parts else np.empty(0)
    np.testing.assert_array_equal(visiting_order(scores), ACQUISITION_FUNCTIONS[name](p))


def test_batched_scores_multi_output():
    p = np.random.default_rng(2).dirichlet(np.ones(3), size=(40, 2)).transpose(0, 2, 1)
    assert p.shape == (40, 3, 2)
    for name, function in FUNCTIONS:
        scores = np.concatenate([acquisition_scores(name, p[i:i + 9]) for i in range(0, 40, 9)])
        np.testing.assert_array_equal(visiting_order(scores), function(p))


def test_get_acquisition_function_by_name_and_callable():
    assert get_acquisition_function("margin") is margin
    assert get_acquisition_function("Entropy") is entropy
    assert get_acquisition_function("CERTAINTY") is certainty

    def custom(p: np.ndarray) -> np.ndarray:
        return np.arange(len(p))

    assert get_acquisition_function(custom) is custom


def test_get_acquisition_function_errors():
    with pytest.raises(
        ValueError, match="unknown acquisition function 'foo'; choose one of: certainty, certainty_diverse, entropy, entropy_diverse, "
                          "margin, margin_diverse, or pass a callable"
    ):
        get_acquisition_function("foo")
    with pytest.raises(TypeError, match="must be a name .* or a callable; got int 3"):
        get_acquisition_function(3)
    with pytest.raises(ValueError, match="unknown acquisition function 'foo'; choose one of: certainty, .*, margin_diverse$"):
        acquisition_scores("foo", [[1.0]])
    with pytest.raises(TypeError, match="name must be a str"):
        acquisition_scores(margin, [[1.0]])


def test_no_global_random_state_used():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    visiting_order(np.arange(20.0), 0.5, rng=1)
    margin(np.full((10, 2), 0.5), shuffle_prop=1.0, rng=None)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
