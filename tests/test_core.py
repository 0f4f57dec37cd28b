"""The Python API, as the original library's documentation uses it (the notebook widget is tested in test_notebook.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from superintendent import Superintendent
from superintendent.store import DatabaseError
from superintendent.validation import ValidationError

DIGITS = load_digits()


def label_n(widget, n, truth):
    """Label n items through the queue, with the true label of each."""
    for _ in range(n):
        item_id, data = widget.queue.pop()
        widget.queue.submit(item_id, truth(data))


def digit_of(image):
    matches = np.flatnonzero((DIGITS.images == image).all(axis=(1, 2)))
    return int(DIGITS.target[matches[0]])


def test_distributed_example_from_the_docs(tmp_path, db_url, capsys):
    """The reference docs' "distributed labelling" walk-through, on SQLite and PostgreSQL."""
    digits = DIGITS.data.reshape(-1, 8, 8)
    widget = Superintendent(connection_string=db_url, labelling_widget=None)
    widget.add_features(digits[:1000, :])
    assert len(widget.queue) == 1000
    assert widget.new_labels[:30] == [None] * 30

    labeller = Superintendent(connection_string=db_url, worker_id="alice")
    label_n(labeller, 60, digit_of)

    model = LogisticRegression(solver="lbfgs", max_iter=5000)
    widget = Superintendent(
        connection_string=db_url,
        features=digits[:1000, :],  # the docs pass the data again: it is not added twice
        labelling_widget=None,
        model=model,
        model_preprocess=lambda x, y: (x.reshape(-1, 64), y),
    )
    assert len(widget.queue) == 1000
    runs = widget.orchestrate(interval_seconds=None)
    assert runs[0].status == "succeeded"
    assert capsys.readouterr().out.startswith("Score: 0.")
    labels = widget.new_labels
    assert sum(label is not None for label in labels) == 60
    assert widget.progress == pytest.approx(0.06)


def test_active_learning_example_in_memory():
    widget = Superintendent(
        features=DIGITS.data.reshape(-1, 8, 8)[:300],
        model=LogisticRegression(solver="lbfgs", max_iter=5000),
        acquisition_function="entropy",
        model_preprocess=lambda x, y: (x.reshape(-1, 64), y),
    )
    assert widget.database_url == "sqlite://"
    label_n(widget, 40, digit_of)
    run = widget.retrain()
    assert run.status == "succeeded" and run.acquisition_function == "entropy" and run.n_labels == 40
    assert widget.model_runs[0].id == run.id
    assert hasattr(widget.model, "coef_")  # the passed model is the fitted one


def test_text_example_with_labels_given():
    headlines = [f"headline number {i} about {'politics' if i % 2 else 'sport'}" for i in range(20)]
    widget = Superintendent(features=headlines, labels=["professional"] * 5 + [None] * 15,
                            options=["professional", "not professional"])
    assert widget.new_labels[:6] == ["professional"] * 5 + [None]
    item_id, text = widget.queue.pop()
    assert text == headlines[5]


def test_email_dataframe_with_preprocess_and_pipeline():
    emails = pd.DataFrame({
        "email": [f"Hi John,\nthis is just to say {'nice' if i % 2 else 'terrible'} work yesterday.\nBest,\nJim {i}" for i in range(30)],
        "recipient": ["John", "Mike"] * 15,
        "timestamp": ["2018-02-01 15:00", "2018-02-01 15:03"] * 15,
    })
    model = Pipeline([("tfidf_vectorizer", TfidfVectorizer()), ("logistic_regression", LogisticRegression())])
    widget = Superintendent(features=emails, model=model, model_preprocess=lambda x, y: (x["email"], y),
                            acquisition_function="margin", options=["positive", "negative"])
    item_id, row = widget.queue.pop()
    assert isinstance(row, pd.Series) and row["recipient"] == "John"
    label_n(widget, 12, lambda r: "positive" if "nice" in r["email"] else "negative")
    run = widget.retrain()
    assert run.status == "succeeded", run.message
    assert run.score_mean == pytest.approx(1.0)


def test_two_workers_share_one_queue(db_url):
    a = Superintendent(database_url=db_url, features=list("abcdef"), worker_id="a")
    b = Superintendent(database_url=db_url, worker_id="b")
    first, second = a.queue.pop(), b.queue.pop()
    assert first[0] != second[0]
    a.queue.submit(first[0], "x")
    assert b.new_labels[0] == "x"
    assert a.queue.undo() == first
    assert b.new_labels[0] is None


def test_pop_on_an_empty_queue():
    widget = Superintendent(features=[1])
    widget.queue.submit(widget.queue.pop()[0], "done")
    with pytest.raises(IndexError, match="nothing left"):
        widget.queue.pop()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(features=[np.zeros(3), np.zeros(4)]), ValidationError, r"mixed shapes: item 0 has shape \(3,\) but item 1 has shape \(4,\)"),
        (dict(acquisition_function="random-ish"), ValueError, "unknown acquisition function 'random-ish'"),
        (dict(features=[1, 2], labels=["cat", "emu"], options=["cat", "dog"]), ValidationError, "label 'emu' is not an option"),
        (dict(model=object()), ValidationError, "fit and predict_proba"),
        (dict(shuffle_prop=1.5), ValidationError, "between 0 and 1"),
    ],
    ids=["mixed-shapes", "unknown-acquisition", "label-not-an-option", "not-a-model", "bad-shuffle"],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(tmp_path, kwargs, error, message):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with pytest.raises(error, match=message):
        Superintendent(database_url=url, **kwargs)
    if (tmp_path / "db.sqlite").exists():
        assert len(Superintendent(database_url=url).queue) == 0


def test_a_url_that_cannot_connect():
    with pytest.raises(DatabaseError, match=r"cannot connect to postgresql\+psycopg2://nobody@127.0.0.1:1/nowhere: .*Check that the server runs"):
        Superintendent(database_url="postgresql+psycopg2://nobody@127.0.0.1:1/nowhere")
    with pytest.raises(DatabaseError, match="cannot parse database URL"):
        Superintendent(database_url="not a url")


def test_connection_string_is_honoured(tmp_path):
    path = tmp_path / "demo.db"
    Superintendent(connection_string=f"sqlite:///{path}", features=[1, 2, 3])
    assert path.exists()
    assert len(Superintendent(connection_string=f"sqlite:///{path}").queue) == 3
    with pytest.raises(ValidationError, match="same thing"):
        Superintendent(connection_string=f"sqlite:///{path}", database_url="sqlite://")
