"""The Jupyter widget, driven through its Python API (no browser): clicks go to the shared database queue.

Each scenario runs on SQLite and PostgreSQL (``db_url``). A "browser
labeller" is a second user calling ``superintendent.queue`` directly on the
same database, as the web app's Label page does.
"""

from __future__ import annotations

import base64
import html
import io
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from IPython.core.formatters import DisplayFormatter
from ipywidgets.embed import embed_data
from PIL import Image
from sklearn.linear_model import LogisticRegression

from superintendent import Superintendent, serialization
from superintendent import queue as q
from superintendent.auth import ensure_user
from superintendent.hints import Markup, hint_caption
from superintendent.notebook import EMPTY_MESSAGE, SuperintendentWidget, as_option, render_item
from superintendent.store import Role, init_db, make_engine, session_scope
from superintendent.store.models import Item
from superintendent.validation import ValidationError

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"item {i}" for i in range(8)]


def notebook(db_url: str, features=WORDS, **kwargs) -> Superintendent:
    kwargs.setdefault("options", ["cat", "dog"])
    return Superintendent(database_url=db_url, project="pets", features=features, worker_id="scientist", **kwargs)


class BrowserLabeller:
    """Another user working the same project through the queue functions, as the web app does."""

    def __init__(self, db_url: str, name: str = "alice") -> None:
        self.engine = make_engine(db_url)
        with session_scope(self.engine) as s:
            self.project = q.get_project(s, "pets")
            self.user_id = ensure_user(s, name, role=Role.labeller)

    def claim(self) -> q.Task | None:
        with session_scope(self.engine) as s:
            return q.claim_next(s, self.project, self.user_id)

    def submit_and_claim_next(self, item_id: int, label) -> q.Task | None:
        with session_scope(self.engine) as s:
            return q.submit_and_claim_next(s, self.project, self.user_id, item_id, label)


@pytest.fixture
def browser(db_url: str) -> Iterator[Callable[..., BrowserLabeller]]:
    made: list[BrowserLabeller] = []

    def make(name: str = "alice") -> BrowserLabeller:
        made.append(BrowserLabeller(db_url, name))
        return made[-1]

    yield make
    for b in made:
        b.engine.dispose()


def annotations(sup: Superintendent) -> list[tuple[object, str, object]]:
    """(item data, username, label) of every annotation in the project, oldest first."""
    with sup.queue.session() as s:
        rows = q.annotation_log(s, sup.project)
        data = _item_data(s, sup)
    return [(data[r.item_id], r.username, r.label) for r in rows]


def _item_data(s, sup: Superintendent) -> dict[int, object]:
    rows = s.execute(sa.select(Item.id, Item.data).where(Item.project_id == sup.project.id))
    return {item_id: serialization.loads(data) for item_id, data in rows}


# --------------------------------------------------------------------------- display


def test_a_cell_showing_superintendent_shows_its_widget(db_url):
    sup = notebook(db_url)
    data, _ = DisplayFormatter().format(sup)  # what Jupyter does with the last value of a cell
    view = data["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == sup.widget.model_id
    assert isinstance(sup.widget, SuperintendentWidget) and isinstance(sup.widget, widgets.VBox)
    assert sup.widget is sup.widget  # one widget per object: showing it twice shows the same queue position
    assert "items=8" in data["text/plain"]
    w = sup.widget
    assert w.children[0] is w.top_bar and w.progress in w.top_bar.children
    assert w.current_item == "item 0"
    assert (w.progress.value, w.progress.max) == (0, 8)
    assert w.progress_text.value == "0 of 8 labelled"
    assert list(w.buttons) == ["cat", "dog"] and [b.description for b in w.buttons.values()] == ["cat", "dog"]
    assert w.retrain_button is None  # no model, no retrain button


def test_the_widget_tree_serialises_for_the_front_end(db_url):
    """What Jupyter sends to the browser: every model's state, as JSON, for the widget and all it contains."""
    sup = notebook(db_url, features=np.arange(3 * 64, dtype=float).reshape(3, 8, 8), model=LogisticRegression())
    w = sup.widget
    state = embed_data(views=[w], drop_defaults=False)["manager_state"]["state"]
    mine = state[w.model_id]
    assert mine["model_name"] == "VBoxModel"
    assert mine["state"]["children"][0] == f"IPY_MODEL_{w.top_bar.model_id}"
    image = state[w.item.children[0].model_id]
    assert image["model_name"] == "ImageModel" and image["state"]["format"] == "png"
    png = base64.b64decode(next(b["data"] for b in image["buffers"] if b["path"] == ["value"]))
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (280, 280)
    buttons = {s["state"]["description"] for s in state.values() if s["model_name"] == "ButtonModel"}
    assert {"cat", "dog", "Skip", "Undo", "Retrain"} <= buttons
    progress = state[w.progress.model_id]["state"]
    assert (progress["value"], progress["max"]) == (0, 3)


def test_button_clicks_store_labels_in_the_database(db_url):
    sup = notebook(db_url)
    w = sup.widget
    truth = {text: ("cat" if int(text.split()[1]) % 2 else "dog") for text in WORDS}
    seen = []
    while w.current_item is not None:
        seen.append(w.current_item)
        w.buttons[truth[w.current_item]].click()
        assert w.progress.value == len(seen)
    assert seen == WORDS  # queue order, each item once
    assert sup.new_labels == [truth[t] for t in WORDS]
    assert {u for _, u, _ in annotations(sup)} == {"scientist"}
    assert (w.progress.value, w.progress.max, w.progress.bar_style) == (8, 8, "success")
    assert EMPTY_MESSAGE in w.message.value
    assert w.check_again_button in w.children[-1].children

    # another process reading the same database sees the labels
    reader = Superintendent(database_url=db_url, project="pets")
    assert reader.new_labels == sup.new_labels


def test_a_browser_labeller_never_gets_the_item_the_notebook_holds(db_url, browser):
    sup = notebook(db_url)
    w = sup.widget
    alice = browser("alice")
    held = w.current_item_id
    task = alice.claim()
    alice_items = []
    # The two work the queue together, turn about: neither is ever handed what the other holds.
    while task is not None or w.current_item is not None:
        if task is not None:
            assert task.item_id != w.current_item_id
            alice_items.append(task.item_id)
            task = alice.submit_and_claim_next(task.item_id, "dog")
        if w.current_item is not None:
            assert task is None or task.item_id != w.current_item_id
            w.buttons["cat"].click()
    log = annotations(sup)
    per_item = Counter(text for text, _, _ in log)
    assert sorted(per_item) == sorted(WORDS) and set(per_item.values()) == {1}  # every item labelled once
    by_user = Counter(user for _, user, _ in log)
    assert by_user["alice"] == len(alice_items) and by_user["scientist"] == 8 - len(alice_items)
    assert held not in alice_items
    assert by_user["alice"] >= 3 and by_user["scientist"] >= 3
    assert w.progress.value == 8


def test_skip_passes_the_item_to_others_and_undo_takes_a_label_back(db_url, browser):
    sup = notebook(db_url)
    w = sup.widget
    w.buttons["cat"].click()  # item 0
    assert w.current_item == "item 1"
    w.skip_button.click()
    assert w.current_item == "item 2"
    alice = browser("alice")
    assert alice.claim().data == "item 1"  # skipped by the notebook: free for others at once

    w.undo_button.click()  # takes back "cat" on item 0 and shows it again; item 2 goes back to the queue
    assert w.current_item == "item 0"
    assert sup.new_labels[0] is None and annotations(sup) == []
    assert w.progress.value == 0
    bob = browser("bob")
    assert bob.claim().data == "item 2"

    w.buttons["dog"].click()
    assert sup.new_labels[0] == "dog"
    assert w.current_item == "item 3"  # 1 skipped, 2 held by bob

    w.undo_button.click()
    w.undo_button.click()  # nothing more to undo: says so, keeps the item on show
    assert w.current_item == "item 0"
    assert "Nothing to undo" in w.message.value


def test_undo_of_an_item_someone_else_is_labelling_is_refused(db_url, browser):
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:  # two labels wanted per item: an item stays in the queue after one
        q.create_project(s, "pets", options=["cat", "dog"], annotations_per_item=2)
    engine.dispose()
    sup = notebook(db_url, features=["a", "b"])
    w = sup.widget
    w.buttons["cat"].click()  # "a", first of its two labels
    alice = browser("alice")
    assert alice.claim().data == "a"
    w.undo_button.click()
    assert "being labelled by someone else" in html.unescape(w.message.value)
    assert w.current_item == "b" and [label for _, _, label in annotations(sup)] == ["cat"]  # nothing changed


def test_the_models_guess_shows_where_the_project_shows_hints(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        project = q.create_project(s, "pets", options=["cat", "dog"], show_hints=True)
    sup = notebook(db_url, features=["a", "b"])
    with sup.queue.session() as s:
        ids = sorted(s.execute(sa.select(Item.id).where(Item.project_id == project.id)).scalars())
    q.reprioritise(engine, project, ids, [1.0, 0.0], hints=["cat", "<dog>"], confidences=[0.8, 0.65])
    engine.dispose()
    w = sup.widget
    assert w.current_item == "b"
    assert w.hint.value == "Model's guess: <b>&lt;dog&gt;</b> (65% sure)" and w.hint in w.children
    w.buttons["dog"].click()
    assert w.hint.value == "Model's guess: <b>cat</b> (80% sure)"


def test_the_top_guesses_show_with_their_probabilities(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        project = q.create_project(s, "pets", options=["cat", "<dog>"], show_hints=True)
    sup = notebook(db_url, features=["a", "b"], options=["cat", "<dog>"])
    with sup.queue.session() as s:
        ids = sorted(s.execute(sa.select(Item.id).where(Item.project_id == project.id)).scalars())
    q.reprioritise(engine, project, ids, [0.0, 1.0], hints=["cat", "<dog>"], confidences=[0.8, 0.65],
                   top_guesses=[[("cat", 0.8), ("<dog>", 0.2)], [("<dog>", 0.65), ("cat", 0.35)]])
    engine.dispose()
    w = sup.widget
    assert w.current_item == "a"
    assert w.hint.value == "Model's guess: <b>cat</b> (80% sure) · top guesses: cat 80%, &lt;dog&gt; 20%"


def _task(hint, confidence=None, top=None) -> q.Task:
    return q.Task(item_id=1, project_id=1, external_id="a", data="a", priority=0.0, lease_expires_at=None,
                  hint=hint, hint_confidence=confidence, hint_top=top)


@pytest.mark.parametrize(("show", "mode", "task", "markup", "caption"), [
    (False, "single", _task("dog", 0.7), Markup.markdown, None),
    (True, "single", _task(None), Markup.markdown, None),
    (True, "single", _task("dog", 0.7, [("dog", 0.7), ("cat", 0.3)]), Markup.markdown,
     "Model's guess: **dog** (70% sure) · top guesses: dog 70%, cat 30%"),
    (True, "single", _task("dog"), Markup.markdown, "Model's guess: **dog**"),
    (True, "single", _task("dog"), Markup.html, "Model's guess: <b>dog</b>"),
    (True, "single", _task("<b>*x*</b>", 0.5), Markup.markdown, r"Model's guess: **\<b\>\*x\*\</b\>** (50% sure)"),
    (True, "single", _task("<b>*x*</b>", 0.5), Markup.html, "Model's guess: <b>&lt;b&gt;*x*&lt;/b&gt;</b> (50% sure)"),
    (True, "multi", _task(["cat", "dog"], 0.6, [("cat", 0.9), ("dog", 0.6)]), Markup.html,
     "Model's guess: <b>cat, dog</b> (60% sure) · label probabilities: cat 90%, dog 60%"),
    (True, "multi", _task([]), Markup.markdown, "Model's guess: **none**"),
], ids=["hints off", "no hint yet", "markdown with top guesses", "no confidence (markdown)", "no confidence (html)",
        "label text escaped for markdown", "label text escaped for html", "multi-label probabilities", "multi-label, no label"])
def test_the_hint_caption_is_one_pure_function_for_page_and_widget(show, mode, task, markup, caption):
    project = q.Project(name="pets", options=["cat", "dog"], show_hints=show, label_mode=mode)
    assert hint_caption(project, task, markup) == caption


def test_free_text_where_the_project_allows_it(db_url):
    sup = notebook(db_url, options=[])  # no options: any label
    w = sup.widget
    assert w.buttons == {}
    assert any(w.free_text in row.children for row in w.children if isinstance(row, widgets.HBox))
    w.free_text_button.click()
    assert "Type a label first" in w.message.value and w.current_item == "item 0"
    w.free_text.value = "  a tabby  "
    w.free_text_button.click()
    assert sup.new_labels[0] == "a tabby"
    assert w.free_text.value == "" and w.current_item == "item 1"


def test_a_label_that_is_not_an_option_changes_nothing(db_url):
    sup = notebook(db_url)
    w = sup.widget
    assert not any(w.free_text in row.children for row in w.children if isinstance(row, widgets.HBox))
    w.submit("bird")
    assert "label 'bird' is not an option of project 'pets' (options: cat, dog)" in html.unescape(w.message.value)
    assert w.current_item == "item 0" and annotations(sup) == [] and w.progress.value == 0
    w.buttons["cat"].click()
    assert w.message.value == "" and sup.new_labels[0] == "cat"


def test_multi_label_toggles_and_submit(db_url):
    sup = notebook(db_url, options=["red", "green", "blue"], label_mode="multi")
    w = sup.widget
    assert w.buttons == {} and list(w.toggles) == ["red", "green", "blue"]
    w.toggles["blue"].value = True
    w.toggles["red"].value = True
    w.submit_button.click()
    assert sup.new_labels[0] == ["red", "blue"]  # stored in option order
    assert not any(t.value for t in w.toggles.values())  # cleared for the next item
    assert w.current_item == "item 1"
    w.submit_button.click()  # nothing chosen: an empty list is a label too
    assert sup.new_labels[1] == []


# --------------------------------------------------------------------------- labelling_widget


def test_ipyannotations_widget_as_labelling_widget(db_url, browser):
    from ipyannotations.text import ClassLabeller

    annotator = ClassLabeller(options=[1, 2], allow_freetext=False)  # it turns options into strings "1", "2"
    sup = notebook(db_url, options=[1, 2], labelling_widget=annotator)
    w = sup.widget
    assert annotator in w.children
    assert w.current_item == "item 0"
    annotator.control_elements.buttons["2"].button.click()
    assert sup.new_labels[0] == 2  # the project's own option, an int
    assert w.current_item == "item 1"
    annotator.skip_button.click()  # ipyannotations skips by submitting None
    assert w.current_item == "item 2" and sup.new_labels[1] is None
    assert browser("alice").claim().data == "item 1"
    annotator.undo_button.click()
    assert w.current_item == "item 0" and sup.new_labels[0] is None


class TinyLabeller(widgets.VBox):
    """The smallest labelling widget: display(data) and on_submit(callback), no undo of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list = []
        self.callbacks: list = []
        self.text = widgets.Text()

    def display(self, data) -> None:
        self.shown.append(data)
        self.children = (widgets.HTML(str(data)), self.text)

    def on_submit(self, callback) -> None:
        self.callbacks.append(callback)

    def submit(self) -> None:
        for callback in self.callbacks:
            callback(self.text.value)


def test_a_custom_widget_with_display_and_on_submit(db_url):
    tiny = TinyLabeller()
    sup = notebook(db_url, labelling_widget=tiny)
    w = sup.widget
    assert tiny.shown == ["item 0"]
    assert any(w.skip_button in row.children for row in w.children if isinstance(row, widgets.HBox))  # ours, as it has no undo
    tiny.text.value = "dog"
    tiny.submit()
    assert tiny.shown == ["item 0", "item 1"] and sup.new_labels[0] == "dog"
    w.undo_button.click()
    assert tiny.shown[-1] == "item 0" and sup.new_labels[0] is None


def test_a_labelling_widget_without_the_interface_is_refused(db_url):
    with pytest.raises(ValidationError, match=r"display\(data\) and on_submit\(callback\)"):
        Superintendent(database_url=db_url, labelling_widget=object())


def test_labels_from_string_buttons_map_to_the_projects_options():
    assert as_option("3", [1, 2, 3]) == 3
    assert as_option(["1", "3"], [1, 2, 3]) == [1, 3]
    assert as_option("cat", ["cat", "dog"]) == "cat"
    assert as_option("bird", ["cat"]) == "bird"  # left alone: the queue's check says what is wrong
    assert as_option("1", [1, "1"]) == "1"


# --------------------------------------------------------------------------- showing items


def _png_size(image: widgets.Image) -> tuple[int, int]:
    assert image.format == "png"
    with Image.open(io.BytesIO(image.value)) as im:
        return im.size


def test_items_are_shown_by_what_they_are(tmp_path):
    digit = np.arange(64, dtype=float).reshape(8, 8)
    shown = render_item(digit)
    assert isinstance(shown, widgets.Image) and _png_size(shown) == (280, 280)  # 8 px scaled up 35x, no blur
    colour = render_item(np.zeros((3, 10, 20)))
    assert _png_size(colour) == (280, 140)

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (1600, 400), "red").save(photo)
    for item in (photo, str(photo), {"image_path": str(photo), "name": "photo.jpg"}):
        shown = render_item(item)
        assert isinstance(shown, widgets.Image) and _png_size(shown) == (800, 200)
    missing = render_item({"image_path": str(tmp_path / "gone.png")})
    assert "image file is missing" in missing.value
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert "cannot show image file" in render_item(broken).value

    text = render_item("<script>alert(1)</script>\nline two")
    assert "<script>" not in text.value and "&lt;script&gt;" in text.value and "line two" in text.value
    row = render_item(pd.Series({"email": "Hi <John>", "recipient": "John"}))
    assert "<th style='text-align: left; padding-right: 1em'>email</th>" in row.value and "Hi &lt;John&gt;" in row.value
    only = render_item({"email": "Hi", "secret": "x"}, display_columns=["email"])
    assert "secret" not in only.value
    vector = render_item(np.array([1.5, 2.5]))
    assert "<table" in vector.value and "2.5" in vector.value
    other = render_item(12.5)
    assert "12.5" in other.value


def test_dataframe_rows_in_the_widget(db_url):
    frame = pd.DataFrame({"email": ["Hi <b>John</b>", "Hi Mike"], "recipient": ["John", "Mike"]})
    sup = notebook(db_url, features=frame)
    w = sup.widget
    shown = w.item.children[0]
    assert "recipient" in shown.value and "Hi &lt;b&gt;John&lt;/b&gt;" in shown.value
    w.buttons["dog"].click()
    assert "Hi Mike" in w.item.children[0].value


def test_new_data_reaches_a_widget_that_had_run_out(db_url):
    sup = notebook(db_url, features=["only one"])
    w = sup.widget
    w.buttons["cat"].click()
    assert w.current_item is None and EMPTY_MESSAGE in w.message.value
    sup.add_features(["fresh"])
    assert w.current_item == "fresh" and (w.progress.value, w.progress.max) == (1, 2)


def test_check_again_picks_up_items_others_released(db_url, browser):
    sup = notebook(db_url, features=["a", "b"])
    alice = browser("alice")
    task = alice.claim()  # alice holds "a"
    w = sup.widget
    assert w.current_item == "b"
    w.buttons["cat"].click()
    assert w.current_item is None
    with session_scope(alice.engine) as s:
        q.release(s, alice.project, alice.user_id, task.item_id)  # alice closes her tab
    w.check_again_button.click()
    assert w.current_item == "a"


# --------------------------------------------------------------------------- retrain


def test_retrain_button_shows_the_score_and_reorders(db_url):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (60, 2)) + np.where(np.arange(60) % 2, 2.0, -2.0)[:, None]  # left, right, left, ...
    sup = notebook(db_url, features=x, options=["left", "right"], model=LogisticRegression(), acquisition_function="margin")
    w = sup.widget
    assert w.retrain_button in w.top_bar.children and w.score in w.top_bar.children
    w.retrain_button.click()
    assert w.score.value.startswith("Retrain skipped")  # nothing to learn from yet
    for _ in range(12):
        w.buttons["left" if w.current_item[0] < 0 else "right"].click()
    w.retrain_button.click()
    assert w.score.value.startswith("Score: ")
    assert 0.8 <= float(w.score.value.split()[1]) <= 1.0
    assert sup.model_runs[0].status == "succeeded"
    assert w.retrain_button.description == "Retrain" and not w.retrain_button.disabled
    assert sup.model_runs[0].n_ranked == 48
    # after the re-ordering the widget shows the queue's new first item
    with sup.queue.session() as s:
        first = s.execute(sa.select(Item.id).where(Item.project_id == sup.project.id, ~Item.done)
                          .order_by(Item.priority, Item.id).limit(1)).scalar_one()
    assert w.current_item_id == first


def test_a_widget_needs_only_a_queue_and_a_retrain_callback(db_url):
    """The widget knows an engine, a project, a user and a callback, not ``Superintendent``."""
    sup = notebook(db_url, features=["a", "b"])
    calls: list[str] = []

    def retrain():  # stands in for a retrain that found another process at it
        calls.append("retrain")

    w = SuperintendentWidget(sup.engine, sup.project, sup.queue.user_id, retrain=retrain)
    assert w.current_item == "a" and w.retrain_button in w.top_bar.children
    w.retrain_button.click()
    assert calls == ["retrain"] and w.score.value == "Another process is retraining this project right now."
    assert w.current_item == "a"  # handed back and claimed again: still the queue's first
    w.buttons["cat"].click()
    assert [label for _, _, label in annotations(sup)] == ["cat"] and w.current_item == "b"
    bare = SuperintendentWidget(sup.engine, sup.project, sup.queue.user_id)  # same user: resumes the item held
    assert bare.retrain_button is None and bare.current_item == "b"
    with pytest.raises(ValidationError, match="no model to retrain"):
        bare.retrain()


# --------------------------------------------------------------------------- without ipywidgets


def test_without_ipywidgets_the_core_works_and_display_says_what_to_install():
    script = textwrap.dedent("""
        import sys
        sys.modules["ipywidgets"] = None  # as if it were not installed
        from IPython.core.formatters import DisplayFormatter
        from superintendent import Superintendent

        sup = Superintendent(features=["a", "b"], options=["x", "y"])
        item_id, data = sup.queue.pop()
        sup.queue.submit(item_id, "x")
        print("labels", sup.new_labels)
        try:
            sup.widget
        except ImportError as exc:
            print("error", exc)
        data, _ = DisplayFormatter().format(sup)
        print("shown", sorted(data))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "labels ['x', None]" in lines
    assert "error the notebook widget needs ipywidgets: pip install superintendent[notebook]" in lines
    assert "shown ['text/plain']" in lines  # the cell falls back to the text repr ...
    assert "pip install superintendent[notebook]" in result.stderr  # ... after showing the error
