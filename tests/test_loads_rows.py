"""serialization.loads_rows: many rows at once, the same values and errors as loads row by row (issue 14: a retrain
spent most of its reading time decoding one JSON payload after another)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import load_digits

from superintendent import serialization

DTYPES = ["bool", "int8", "uint16", "int32", "int64", "float16", "float32", "float64", "complex64"]


def same(a, b) -> bool:
    return (type(a) is type(b) and (not isinstance(a, np.ndarray) or (a.dtype == b.dtype and a.shape == b.shape))
            and np.array_equal(np.asarray(a), np.asarray(b), equal_nan=np.asarray(a).dtype.kind in "fc"))


def test_digits_are_read_in_one_block_with_the_values_of_loads():
    images = load_digits().images[:500]
    rows = [serialization.dumps(image) for image in images]
    got = serialization.loads_rows(rows)
    assert all(same(a, serialization.loads(r)) for a, r in zip(got, rows))
    assert got[0].base is not None and got[0].base is got[1].base  # the bulk path: one block, a view per row


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(DTYPES).flatmap(lambda d: st.lists(
    hnp.arrays(np.dtype(d), st.just((3, 2))), min_size=1, max_size=6)))
def test_any_numeric_rows_of_one_shape_give_what_loads_gives(arrays):
    rows = [serialization.dumps(a) for a in arrays]
    assert all(same(a, b) for a, b in zip(serialization.loads_rows(rows), [serialization.loads(r) for r in rows]))


def test_mixed_rows_fall_back_to_loads_row_by_row():
    rows = [serialization.dumps(np.zeros(3)), serialization.dumps([1, 2]), serialization.dumps(np.zeros(4)),
            serialization.dumps({"text": "hi"}), serialization.dumps(np.zeros(3, dtype=np.float32))]
    got = serialization.loads_rows(rows)
    assert all(same(a, serialization.loads(r)) for a, r in zip(got, rows))
    assert serialization.loads_rows([]) == []


@pytest.mark.parametrize("corrupt", [
    lambda r: r.replace('"data":"', '"data":"!!'),  # not base64
    lambda r: r.replace('"data":"', '"data":"AAAA'),  # four bytes too many
    lambda r: r.replace('"shape":[8,8]', '"shape":[8,9]'),  # shape does not match the data
    lambda r: r.replace('"float64"', '"object"'),  # not a numeric dtype
    lambda r: r.replace('"data":"A', '"data":"!'),  # one character that is not base64, the length unchanged
    lambda r: r[:-4] + '=A"}}',  # padding inside the data, the length unchanged
    lambda r: r.replace('"dtype"', '"dtypf"'),  # laid out like the others, but not what dumps writes
])
def test_a_bad_row_among_good_ones_raises_what_loads_raises(corrupt):
    rows = [serialization.dumps(image) for image in load_digits().images[:5]]
    rows[3] = corrupt(rows[3])
    with pytest.raises(ValueError) as by_rows:
        serialization.loads_rows(rows)
    with pytest.raises(ValueError) as alone:
        serialization.loads(rows[3])
    assert str(by_rows.value) == str(alone.value)
