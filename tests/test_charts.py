"""Charts, tables and images as a person reads them: every class labelled, whole-number counts, readable times and sizes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from superintendent import queue, reports
from superintendent.app import charts
from superintendent.app.model_view import stopping_chart
from superintendent.images import MIN_DISPLAY_PIXELS, array_to_image, scaled_to
from superintendent.learning.runs import finish_run, latest_runs, run_numbers, start_run
from superintendent.store import session_scope

APP = Path(__file__).resolve().parents[1] / "streamlit_app.py"
DIGITS = {str(d): n for d, n in zip(range(10), [4, 7, 3, 5, 6, 2, 8, 1, 3, 4])}


def test_a_bar_per_digit_labels_every_digit_and_counts_in_whole_numbers():
    fig = charts.per_class_bar(DIGITS)
    assert (fig.layout.xaxis.type, fig.layout.xaxis.dtick) == ("category", 1)  # "3" is a class, not a number between 2 and 4
    assert fig.layout.yaxis.tickformat == ",d" and fig.layout.yaxis.dtick == 1


def test_an_option_nobody_used_yet_has_its_bar_at_zero_in_the_options_order():
    # a multi-label project of jokes with options neutral, chuck, pun: nobody has ticked "pun" yet, and one free-text label
    fig = charts.per_class_bar({"chuck": 9, "neutral": 9, "other thing": 1}, options=["neutral", "chuck", "pun"])
    assert list(fig.data[0].x) == ["neutral", "chuck", "pun", "other thing"]
    assert list(fig.data[0].y) == [9, 9, 0, 1]


def test_a_confusion_matrix_labels_every_class_on_both_axes():
    labels = list(range(10))
    fig = charts.confusion_heatmap({"labels": labels, "matrix": np.eye(10, dtype=int).tolist()})
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert (axis.type, axis.dtick) == ("category", 1)
    assert list(fig.data[0].x) == [str(d) for d in labels]


def test_large_counts_still_tick_at_whole_numbers_only():
    users = pd.DataFrame({"user": ["ann", "bob"], "labels": [37, 12], "labels_per_hour": [60.0, 30.0], "median_seconds": [1.2, 2.0]})
    fig = charts.per_user_bar(users)
    assert fig.layout.yaxis.tickformat == ",d" and fig.layout.xaxis.type == "category"


def test_the_timeline_is_shown_in_the_browsers_time_zone():
    times = pd.to_datetime(["2026-11-30 10:00", "2026-11-30 10:05"]).tz_localize("UTC")
    fig = charts.timeline_chart(pd.DataFrame({"created_at": times, "user": ["ann", "ann"], "labels": [1, 2]}), timezone="Europe/Berlin")
    assert fig.layout.xaxis.title.text == "time (Europe/Berlin)"
    assert pd.Timestamp(fig.data[0].x[0]).hour == 11


def test_run_numbers_count_within_each_project_and_times_read_plainly(engine):
    with session_scope(engine) as s:
        pets = queue.create_project(s, "pets", options=["cat", "dog"])
        cars = queue.create_project(s, "cars", options=["red", "blue"])
    for project in (pets, cars, pets, cars, cars):
        finish_run(engine, start_run(engine, project), status="skipped", message="need labels of at least two classes")
    assert sorted(run_numbers(engine, cars).values()) == [1, 2, 3]
    table = reports.runs_frame(latest_runs(engine, cars), run_numbers(engine, cars), timezone="Asia/Tokyo")
    assert list(table["run"]) == [1, 2, 3]
    started = table["started"].iloc[0]
    assert "+00:00" not in started and dt.datetime.strptime(started, "%Y-%m-%d %H:%M:%S")


def test_readable_time():
    when = dt.datetime(2026, 11, 30, 13, 5, 9, 123456, tzinfo=dt.timezone.utc)
    assert reports.readable_time(when) == "2026-11-30 13:05:09"
    assert reports.readable_time(when, "America/New_York") == "2026-11-30 08:05:09"
    assert reports.readable_time(when, "Not/AZone") == "2026-11-30 13:05:09"
    assert reports.readable_time(None) == ""


def test_images_are_shown_at_a_readable_size_and_small_ones_stay_crisp():
    digit = array_to_image(np.arange(64).reshape(8, 8))
    assert max(digit.size) >= MIN_DISPLAY_PIXELS
    pixels = np.asarray(digit)
    factor = digit.width // 8
    assert len(np.unique(pixels[:factor, :factor])) == 1  # one source pixel is one flat square: no blur
    photo = scaled_to(Image.new("RGB", (100, 75), "white"), MIN_DISPLAY_PIXELS)
    assert photo.size == (256, 192)
    big = Image.new("RGB", (1200, 900))
    assert scaled_to(big, MIN_DISPLAY_PIXELS) is big  # never shrunk
    wide = array_to_image(np.zeros((100, 60)))
    assert max(wide.size) >= MIN_DISPLAY_PIXELS


# --------------------------------------------------------------------------- the pages (Streamlit's AppTest)


def _app_as(engine, name, role):  # noqa: ANN001, ANN202
    from streamlit.testing.v1 import AppTest

    from superintendent import auth

    with session_scope(engine) as s:
        auth.create_user(s, name, "correct horse battery", role)
    at = AppTest.from_file(str(APP), default_timeout=90).run()
    at.text_input[0].input(name)
    at.text_input[1].input("correct horse battery")
    at.button[0].click().run()
    return at.run()


def test_skip_and_undo_say_what_they_did_and_the_labelled_share_reads_as_a_share(app_env):
    with session_scope(app_env) as s:
        project = queue.create_project(s, "pets", options=["cat", "dog"])
        queue.add_items(s, project, [f"text {i}" for i in range(4)])
    at = _app_as(app_env, "boss", "admin")
    at.button(key="label-skip").click().run()
    assert [t.value for t in at.toast] == ["Skipped: this item will not be shown to you again."]
    at.button(key="label-opt-0").click().run()
    at.button(key="label-undo").click().run()
    assert [t.value for t in at.toast] == ["Undone: your last label was taken back; its item is shown again."]
    at.switch_page("pages/progress.py").run()
    labelled = next(m for m in at.metric if m.label == "Labelled")
    assert labelled.value == "0 (0%)" and labelled.delta in (None, "")  # no arrow: a share, not growth
    with session_scope(app_env) as s:
        other = queue.create_project(s, "other", options=["a", "b"])
    for p in (other, project, other, project):
        finish_run(app_env, start_run(app_env, p), status="skipped", message="need labels of at least two classes")
    at.switch_page("pages/model.py").run()
    assert at.selectbox(key="model-project").value.name == "pets"  # the project chosen on the Label page
    shown = [df.value for df in at.dataframe]
    runs = next(df for df in shown if "status" in df.columns)
    assert sorted(runs["run"]) == [1, 2]
    assert "None" not in runs.astype(str).to_numpy().ravel().tolist()
    assert not any("+00:00" in str(v) for v in runs.to_numpy().ravel())


def test_run_charts_tick_at_the_label_counts_of_the_runs():
    one = pd.DataFrame({"labels": [300], "score": [0.9], "spread": [0.01]})
    fig = charts.score_chart(one)
    assert list(fig.layout.xaxis.tickvals) == [300] and list(fig.layout.xaxis.ticktext) == ["300"]  # it read "299, 300, 300, 301"
    many = pd.DataFrame({"labels": list(range(20, 260, 20)), "score": [0.5] * 12, "spread": [0.0] * 12})
    fig = charts.score_chart(many)
    assert fig.layout.xaxis.tickvals is None and fig.layout.xaxis.tickformat == ",d"


def test_a_scores_spread_stops_at_0_and_1():
    runs = pd.DataFrame({"labels": [12, 40, 80], "score": [0.833, 0.1, 0.6], "spread": [0.236, 0.3, None]})
    bars = charts.score_chart(runs).data[0].error_y
    assert np.allclose(bars.array, [0.167, 0.3, 0.0]) and np.allclose(bars.arrayminus, [0.236, 0.1, 0.0])


def test_the_stopping_chart_ticks_at_its_runs_label_counts():
    frame = pd.DataFrame({"run": [1, 2, 3], "labels": [25, 25, 1200], "score": [0.7, 0.7, 0.9], "changed %": [None, None, 3.5],
                          "slope (points / 100 labels)": [None, None, 1.0], "verdict": ["", "", ""]})
    fig = stopping_chart(frame)
    assert list(fig.layout.xaxis.tickvals) == [25, 1200] and list(fig.layout.xaxis.ticktext) == ["25", "1,200"]
