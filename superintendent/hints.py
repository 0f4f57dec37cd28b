"""The model's hint for an item as one line of text, the same words on the Label page and in the notebook widget.

Pure formatting: no Streamlit, no ipywidgets, no database. The Label page
shows the line as Markdown (``st.caption``), the notebook widget as HTML
(``ipywidgets.HTML``); label text is escaped for the one asked for.

For a spans or boxes project the hint is a list of marks, pre-filled in the
widget for the labeller to accept or correct; the caption says so and lists
them (a span's covered text, each mark's label and score).
"""

from __future__ import annotations

import enum
import html
from typing import TYPE_CHECKING

from superintendent.marks import is_marks, item_text
from superintendent.markdown_text import literal

if TYPE_CHECKING:
    from superintendent.queue import Task
    from superintendent.store.models import Project

HELP = ("The latest model's most likely labels for this item. Hints can bias labellers: "
        "an admin turns them on or off per project.")
MARKS_HELP = ("The latest model's marks for this item, already drawn for you: check each one, fix or remove the wrong "
              "ones, add what it missed, then submit. Hints can bias labellers: an admin turns them on or off per project.")
SHOWN_MARKS = 5  # marks listed in the caption; the rest are counted


class Markup(enum.Enum):
    """How the caption is written: Markdown for Streamlit, HTML for a notebook widget."""

    markdown = "markdown"
    html = "html"


def _escape(text: str, markup: Markup) -> str:
    return html.escape(text) if markup is Markup.html else literal(text)


def _bold(text: str, markup: Markup) -> str:
    return f"<b>{text}</b>" if markup is Markup.html else f"**{text}**"


def hint_caption(project: Project, task: Task | None, markup: Markup = Markup.markdown) -> str | None:
    """``Model's guess: **dog** (70% sure) · top guesses: dog 70%, cat 30%``, or None when there is nothing to show.

    Nothing is shown when the project hides hints or the item has no hint yet.
    The confidence and the top guesses are left out when the model gave none;
    for a multi-label project the top list is each label's probability.
    """
    if task is None or task.hint is None or not project.show_hints:
        return None
    if is_marks(project.label_mode):
        return _marks_caption(project, task, markup)
    guess = ", ".join(map(str, task.hint)) if isinstance(task.hint, list) else str(task.hint)
    text = "Model's guess: " + _bold(_escape(guess or "none", markup), markup)
    if task.hint_confidence is not None:
        text += f" ({task.hint_confidence:.0%} sure)"
    if task.hint_top:
        what = "label probabilities" if project.label_mode == "multi" else "top guesses"
        text += f" · {what}: " + ", ".join(f"{_escape(str(label), markup)} {p:.0%}" for label, p in task.hint_top)
    return text


def _mark_name(project: Project, task: Task, mark: dict, markup: Markup) -> str:
    """A span's covered text in quotes, then its label; a box's label."""
    label = _escape(str(mark.get("label")), markup)
    if project.label_mode == "spans":
        try:
            covered = item_text(task.data)[int(mark["start"]):int(mark["end"])]
        except (KeyError, TypeError, ValueError):
            return label
        return _bold(_escape(f"\u201c{covered}\u201d", markup), markup) + f" {label}"
    return _bold(label, markup)


def _marks_caption(project: Project, task: Task, markup: Markup) -> str | None:
    """``Model's suggestion, pre-filled: 2 spans (61% sure): **"Peru"** COUNTRY 92%, **"Mile-End"** DISTRICT 61%``."""
    marks = [m for m in task.hint if isinstance(m, dict)] if isinstance(task.hint, list) else None
    if marks is None:
        return None
    kind = project.label_mode if len(marks) != 1 else project.label_mode[:-1]
    text = "Model's suggestion, pre-filled: " + (f"{len(marks)} {kind}" if marks else "nothing to mark")
    if task.hint_confidence is not None:
        text += f" ({task.hint_confidence:.0%} sure)"
    if marks:
        scores = [p for _, p in task.hint_top] if task.hint_top and len(task.hint_top) == len(marks) else [None] * len(marks)
        shown = [_mark_name(project, task, m, markup) + ("" if p is None else f" {p:.0%}")
                 for m, p in zip(marks[:SHOWN_MARKS], scores)]
        more = f", and {len(marks) - SHOWN_MARKS} more" if len(marks) > SHOWN_MARKS else ""
        text += ": " + ", ".join(shown) + more
    return text


def hint_help(project: Project) -> str:
    """The help text beside the caption: what a hint is for this kind of project."""
    return MARKS_HELP if is_marks(project.label_mode) else HELP
