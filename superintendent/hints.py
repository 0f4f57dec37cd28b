"""The model's hint for an item as one line of text, the same words on the Label page and in the notebook widget.

Pure formatting: no Streamlit, no ipywidgets, no database. The Label page
shows the line as Markdown (``st.caption``), the notebook widget as HTML
(``ipywidgets.HTML``); label text is escaped for the one asked for.
"""

from __future__ import annotations

import enum
import html
from typing import TYPE_CHECKING

from superintendent.markdown_text import literal

if TYPE_CHECKING:
    from superintendent.queue import Task
    from superintendent.store.models import Project

HELP = ("The latest model's most likely labels for this item. Hints can bias labellers: "
        "an admin turns them on or off per project.")


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
    guess = ", ".join(map(str, task.hint)) if isinstance(task.hint, list) else str(task.hint)
    text = "Model's guess: " + _bold(_escape(guess or "none", markup), markup)
    if task.hint_confidence is not None:
        text += f" ({task.hint_confidence:.0%} sure)"
    if task.hint_top:
        what = "label probabilities" if project.label_mode == "multi" else "top guesses"
        text += f" · {what}: " + ", ".join(f"{_escape(str(label), markup)} {p:.0%}" for label, p in task.hint_top)
    return text
