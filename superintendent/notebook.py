"""The Jupyter front: a labelling widget on the same database queue as the web app.

``Superintendent(...)`` shown in a notebook cell displays a
:class:`SuperintendentWidget` (``pip install superintendent[notebook]``). It
claims items from the project's queue and submits labels to it exactly as
the Label page does (one transaction per click, one
:func:`superintendent.queue.act`: store the label, lease the next item), so
a data scientist in a notebook and a team in browsers work one queue
together and never hold the same item at once. The widget knows the queue
(engine, project, user) and, with a model, a retrain callback; it does not
know :class:`superintendent.core.Superintendent`, which builds it.

This is the only module that imports ipywidgets; nothing imports it until a
widget is asked for, so the rest of the package works without ipywidgets.
An ipyannotations-style widget (``display(data)``, ``on_submit(callback)``,
optionally ``on_undo(callback)``) can replace the built-in buttons: pass it
as ``Superintendent(labelling_widget=...)``.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from superintendent import queue as q
from superintendent.config import get_settings
from superintendent.hints import Markup, hint_caption
from superintendent.images import array_to_image, is_image_array
from superintendent.queue import Action
from superintendent.store import DatabaseError, ModelRun, Project
from superintendent.store.db import run_transaction
from superintendent.validation import SuperintendentError, ValidationError

INSTALL_HINT = "the notebook widget needs ipywidgets: pip install superintendent[notebook]"

try:
    import ipywidgets as widgets
except ImportError as exc:  # raised with the fix, where the widget is asked for
    raise ImportError(INSTALL_HINT) from exc

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})
MAX_FILE_PIXELS = 800  # image files are shrunk to fit this box before they are sent to the browser
DATABASE_MESSAGE = "The database is not answering right now; it reconnects by itself. Try again in a moment: nothing you submitted is lost."
EMPTY_MESSAGE = "Nothing left for you to label in this project."


# --------------------------------------------------------------------------- showing one item


def array_png(arr: np.ndarray) -> bytes:
    """A 2-D (grey) or 3-D (colour) array as PNG bytes, scaled up without blur (see :mod:`superintendent.images`)."""
    out = io.BytesIO()
    array_to_image(arr).save(out, format="PNG")
    return out.getvalue()


def file_png(path: Path, max_pixels: int = MAX_FILE_PIXELS) -> bytes:
    """An image file as PNG bytes, shrunk to fit ``max_pixels``; raises ValidationError if it is not a readable image."""
    try:
        with Image.open(path) as image:
            image.thumbnail((max_pixels, max_pixels))
            if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
                image = image.convert("RGB")
            out = io.BytesIO()
            image.save(out, format="PNG")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as exc:
        raise ValidationError(f"cannot show image file {str(path)!r}: {exc}") from None
    return out.getvalue()


def image_file(data: Any) -> Path | None:
    """The image file an item names (``Path``, ``{"image_path": ...}`` or a string ending in an image suffix), or None."""
    if isinstance(data, dict) and "image_path" in data:
        raw: Any = data["image_path"]
    elif isinstance(data, Path) or (isinstance(data, str) and len(data) < 1000 and "\n" not in data
                                    and Path(data).suffix.lower() in IMAGE_SUFFIXES):
        raw = data
    else:
        return None
    path = Path(str(raw)).expanduser()
    if not path.is_absolute() and not path.exists():
        path = get_settings().upload_dir / path  # the web app's uploads, on a notebook beside the server
    return path


def _text(value: str) -> widgets.HTML:
    return widgets.HTML(f'<pre style="white-space: pre-wrap; font-family: inherit; margin: 0">{html.escape(value)}</pre>')


def _table(rows: dict[str, Any]) -> widgets.HTML:
    body = "".join(f"<tr><th style='text-align: left; padding-right: 1em'>{html.escape(str(k))}</th>"
                   f"<td style='white-space: pre-wrap'>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return widgets.HTML(f"<table>{body}</table>")


def render_item(data: Any, display_columns: list[str] | None = None) -> widgets.Widget:
    """A widget showing one item: an image (array or file), text, a table row, or its ``repr``. All text is escaped."""
    if is_image_array(data):
        return widgets.Image(value=array_png(data), format="png")
    path = image_file(data)
    if path is not None:
        if not path.is_file():
            return widgets.HTML(f"<b>This item's image file is missing:</b> {html.escape(str(path))}")
        try:
            return widgets.Image(value=file_png(path), format="png")
        except ValidationError as exc:
            return widgets.HTML(html.escape(str(exc)))
    if isinstance(data, str):
        return _text(data)
    if isinstance(data, (dict, pd.Series)):
        row = data.to_dict() if isinstance(data, pd.Series) else data
        if display_columns:
            row = {k: v for k, v in row.items() if k in display_columns}
        return _table({str(k): v for k, v in row.items()})
    if isinstance(data, np.ndarray):
        frame = pd.DataFrame(np.atleast_2d(data))
        return widgets.HTML(frame.to_html(max_rows=50, max_cols=30))  # to_html escapes cell text
    return _text(repr(data))


def as_option(value: Any, options: list[Any]) -> Any:
    """A label from an input widget in the project's own terms: ipyannotations' buttons give ``"3"`` for option ``3``."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return [as_option(v, options) for v in value]
    if not options or not isinstance(value, str):
        return value
    if value in options:
        return value
    matches = [o for o in options if str(o) == value]
    return matches[0] if len(matches) == 1 else value


# --------------------------------------------------------------------------- the widget


class SuperintendentWidget(widgets.VBox):
    """Label a project's queue in a notebook: the item, a button per option, skip, undo, progress, retrain.

    Every action is one database transaction shared with the web app's
    labellers: a label is stored and the next item leased together.
    ``Superintendent(...).widget`` builds one on its queue; to build one
    yourself, pass the engine, the project, the labeller's user id and, for a
    Retrain button, ``retrain``: a callable returning the recorded
    :class:`~superintendent.store.ModelRun`, or None when another process is
    retraining the project. The Python API drives it without a browser::

        w = Superintendent(database_url=..., options=["cat", "dog"]).widget
        w.current_item            # the data of the item this worker holds (None when done)
        w.buttons["cat"].click()  # label it "cat" and move on
        w.skip_button.click(); w.undo_button.click()
        w.progress.value, w.progress.max   # labelled items, all items

    Attributes
    ----------
    top_bar (``children[0]``)
        ``progress`` (an ``IntProgress``: labelled items of all items) and ``progress_text``; with a
        model, ``retrain_button`` and ``score``.
    item
        The box showing the item (built-in display); with a ``labelling_widget``, that widget shows it.
    buttons, toggles
        ``{option: Button}`` (single-label) or ``{option: ToggleButton}`` plus ``submit_button`` (multi-label).
    free_text, free_text_button
        A text box for labels outside the options, where the project allows them (or has no options).
    skip_button, undo_button, check_again_button
        Skip the item, take back your last label, look for items again once the queue ran dry.
    message
        What happened last, when it needs saying (a refused label, the queue being empty, a database hiccup).
    """

    def __init__(self, engine: sa.Engine, project: Project, user_id: int, *,
                 retrain: Callable[[], ModelRun | None] | None = None, labelling_widget: Any = None) -> None:
        if labelling_widget is not None and not isinstance(labelling_widget, widgets.Widget):
            raise ValidationError(f"labelling_widget must be an ipywidgets widget (such as ipyannotations' ClassLabeller); "
                                  f"got {type(labelling_widget).__name__}")
        super().__init__()
        self.engine = engine
        self.project = project
        self.user_id = user_id
        self._retrain = retrain
        self.labelling_widget = labelling_widget
        self.task: q.Task | None = None
        options = list(self.project.options)
        multi = self.project.label_mode == "multi"

        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="Progress:")
        self.progress_text = widgets.HTML()
        top: list[widgets.Widget] = [self.progress, self.progress_text]
        self.retrain_button: widgets.Button | None = None
        self.score = widgets.HTML()
        if retrain is not None:
            self.retrain_button = widgets.Button(description="Retrain", icon="refresh", tooltip="Fit the model on the labels so far and re-order the queue")
            self.retrain_button.on_click(self._on_retrain)
            top += [self.retrain_button, self.score]
        self.top_bar = widgets.HBox(top)
        self.item = widgets.Box(layout=widgets.Layout(justify_content="center", padding="2.5% 0", width="100%", min_height="60px"))
        self.hint = widgets.HTML()
        self.message = widgets.HTML()

        self.buttons: dict[Any, widgets.Button] = {}
        self.toggles: dict[Any, widgets.ToggleButton] = {}
        self.submit_button = widgets.Button(description="Submit", button_style="success", icon="check")
        self.submit_button.on_click(self._on_submit_multi)
        if multi:
            self.toggles = {o: widgets.ToggleButton(description=str(o)) for o in options}
        else:
            for option in options:
                button = widgets.Button(description=str(option))
                button.on_click(self._on_option(option))
                self.buttons[option] = button
        self.free_text = widgets.Text(placeholder="type a label", description="Other:")
        self.free_text_button = widgets.Button(description="Submit label")
        self.free_text_button.on_click(self._on_free_text)
        self.skip_button = widgets.Button(description="Skip", icon="fast-forward")
        self.skip_button.on_click(lambda _b: self.skip())
        self.undo_button = widgets.Button(description="Undo", icon="undo")
        self.undo_button.on_click(lambda _b: self.undo())
        self.check_again_button = widgets.Button(description="Check again", icon="refresh",
                                                 tooltip="Look for items that came back (expired leases, new data)")
        self.check_again_button.on_click(lambda _b: self.refresh())

        rows: list[widgets.Widget] = []
        if labelling_widget is not None:
            labelling_widget.on_submit(self._on_widget_submit)
            if hasattr(labelling_widget, "on_undo"):
                labelling_widget.on_undo(self.undo)
            else:
                rows.append(widgets.HBox([self.skip_button, self.undo_button]))
        else:
            if multi:
                rows.append(widgets.HBox([*self.toggles.values(), self.submit_button], layout=widgets.Layout(flex_flow="row wrap")))
            elif self.buttons:
                rows.append(widgets.HBox(list(self.buttons.values()), layout=widgets.Layout(flex_flow="row wrap")))
            if self.project.allow_free_text or not options:
                rows.append(widgets.HBox([self.free_text, self.free_text_button]))
            rows.append(widgets.HBox([self.skip_button, self.undo_button]))
        self._controls = rows
        self._act(Action.claim)

    # ---------------------------------------------------------------- what it holds

    @property
    def current_item(self) -> Any:
        """The data of the item on show (leased to this worker), or None when nothing is left."""
        return None if self.task is None else self.task.data

    @property
    def current_item_id(self) -> int | None:
        return None if self.task is None else self.task.item_id

    # ---------------------------------------------------------------- actions (what the buttons call)

    def submit(self, label: Any) -> None:
        """Store ``label`` for the item on show and lease the next one (one transaction)."""
        if self.task is None:
            self._say(EMPTY_MESSAGE)
            return
        self._act(Action.submit, item_id=self.task.item_id, value=label)

    def skip(self) -> None:
        """Pass over the item on show (it goes to others, not back to you) and lease the next one."""
        if self.task is None:
            self._say(EMPTY_MESSAGE)
            return
        self._act(Action.skip, item_id=self.task.item_id)

    def undo(self) -> None:
        """Take back your last label and show that item again (the item on show goes back to the queue)."""
        outcome = self._act(Action.undo)
        if outcome is not None and not outcome.undone:
            self._say("Nothing to undo: you have no labels in this project.")

    def refresh(self) -> None:
        """Re-read progress and, when nothing is on show, look for an item again."""
        self._act(Action.claim)

    def retrain(self) -> ModelRun | None:
        """Retrain the model (the ``retrain`` callback), show its score, and show the item now first in the queue.

        Returns the recorded run, or None when another process is retraining the project right now.
        """
        if self._retrain is None or self.retrain_button is None:  # the button is built exactly when there is a callback
            raise ValidationError("no model to retrain: pass model=... to Superintendent")
        self.retrain_button.disabled = True
        self.retrain_button.description = "Retraining..."
        try:
            run = self._retrain()
        finally:
            self.retrain_button.disabled = False
            self.retrain_button.description = "Retrain"
        if run is None:
            self.score.value = "Another process is retraining this project right now."
            return None
        if run.status == "succeeded" and run.score_mean is not None and math.isfinite(run.score_mean):
            self.score.value = f"Score: {run.score_mean:.3f}"
        else:
            first = (run.message or "").splitlines()[0] if run.message else ""
            self.score.value = html.escape(f"Retrain {run.status}" + (f": {first}" if first else ""))
        held = self.current_item_id

        def transaction(s: Any) -> q.Outcome:  # the queue was re-ordered: hand back the item and take the new first
            if held is not None:
                q.act(s, self.project, self.user_id, Action.release, item_id=held)
            return q.act(s, self.project, self.user_id, Action.claim)

        self._run(transaction, idempotent=True)
        return run

    # ---------------------------------------------------------------- button handlers

    def _on_option(self, option: Any) -> Callable[[Any], None]:
        return lambda _button: self.submit(option)

    def _on_submit_multi(self, _button: Any = None) -> None:
        chosen = [o for o, t in self.toggles.items() if t.value]
        self.submit(chosen)

    def _on_free_text(self, _button: Any = None) -> None:
        text = self.free_text.value.strip()
        if not text:
            self._say("Type a label first.")
            return
        self.submit([text] if self.project.label_mode == "multi" else text)

    def _on_widget_submit(self, value: Any) -> None:
        """An ipyannotations widget's submission: None means skip (as in ipyannotations)."""
        if value is None:
            self.skip()
        else:
            self.submit(as_option(value, list(self.project.options)))

    def _on_retrain(self, _button: Any = None) -> None:
        try:
            self.retrain()
        except SuperintendentError as exc:
            self._say(str(exc))

    # ---------------------------------------------------------------- plumbing

    def _act(self, action: Action, *, item_id: int | None = None, value: Any = None) -> q.Outcome | None:
        """One :func:`superintendent.queue.act` as its own transaction; an undo is not run again after a lost
        connection (a second run would take back one more label), everything else is."""
        return self._run(lambda s: q.act(s, self.project, self.user_id, action, item_id=item_id, value=value),
                         idempotent=action is not Action.undo)

    def _run(self, transaction: Callable[[Any], q.Outcome], *, idempotent: bool) -> q.Outcome | None:
        """Run one queue transaction (with the progress read in it) and show what it leaves us holding.

        Returns its outcome, or None when it failed (the message says why).
        """

        def with_counts(s: Any) -> tuple[q.Outcome, tuple[int, int]]:
            outcome = transaction(s)
            return outcome, q.progress_counts(s, self.project)

        try:
            outcome, (total, labelled) = run_transaction(self.engine, with_counts, retries=3, idempotent=idempotent)
        except (SuperintendentError, DatabaseError) as exc:
            self._say(str(exc))
            return None
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            self._say(DATABASE_MESSAGE)
            return None
        self.message.value = ""
        self.task = outcome.task
        self.progress.max = max(total, 1)
        self.progress.value = labelled
        self.progress.bar_style = "success" if total and labelled == total else ""
        self.progress_text.value = f"{labelled:,} of {total:,} labelled"
        self._show()
        return outcome

    def _say(self, text: str) -> None:
        self.message.value = f"<b>{html.escape(text)}</b>"

    def _show(self) -> None:
        for toggle in self.toggles.values():
            toggle.value = False
        self.free_text.value = ""
        if self.task is None:
            self.item.children = ()
            self.hint.value = ""
            self.message.value = f"<b>{html.escape(EMPTY_MESSAGE)}</b>"
            self.children = (self.top_bar, self.message, widgets.HBox([self.check_again_button, self.undo_button]))
            return
        task = self.task
        self.hint.value = hint_caption(self.project, task, Markup.html) or ""
        if self.labelling_widget is not None:
            self.labelling_widget.display(task.data)
            self.children = (self.top_bar, self.hint, self.labelling_widget, *self._controls, self.message)
        else:
            self.item.children = (render_item(task.data, self.project.display_columns),)
            self.children = (self.top_bar, self.item, self.hint, *self._controls, self.message)
