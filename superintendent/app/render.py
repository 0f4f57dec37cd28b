"""Show one item by what it is: an image array, an image file, text, or a table row. Text is always shown as text.

Every string that came from an upload, a label, a user or a project name and is drawn where Streamlit reads
Markdown (captions, alerts, headers, ``st.table`` cells, widget labels such as label buttons, ``help``) goes
through :func:`text` first, so it shows as its own characters: never an image fetched from another host, a link,
a colour or an icon (:mod:`superintendent.markdown_text` holds the rule). Guidelines are the admin's Markdown,
drawn by :func:`guidelines` without raw HTML and without images. Charts' categories (labels, user names) go
through :func:`chart_text`. ``st.dataframe``, ``st.text``, ``st.code`` and the options of select boxes show plain
text already.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from superintendent import marks
from superintendent.app import resources
from superintendent.images import DISPLAY_PIXELS, ZOOM_PIXELS, array_to_image, is_image_array, scaled_to
from superintendent.markdown_text import literal, without_images
from superintendent.validation import ValidationError


def text(value: Any) -> str:
    """``value`` (an uploaded string, a label, an id, a user or project name) as Markdown that shows exactly its
    characters; put it into any string Streamlit reads as Markdown, e.g. ``st.success(f"Corrected to {text(label)}.")``."""
    return literal(value)


def guidelines(markdown: str) -> None:
    """A project's guidelines: the admin's Markdown, with raw HTML shown as text and every image shown as its
    Markdown text (``![x](http://...)``), so no reader's browser fetches anything from another host."""
    st.markdown(without_images(markdown), unsafe_allow_html=False)


def chart_text(value: Any) -> str:
    """A label, user name or id as a plotly chart shows it literally: plotly reads ``<b>``, ``<br>``, ``<a href=...>``
    and HTML entities in axis, legend and hover text, so ``<``, ``>`` and ``&`` go in as entities."""
    return html.escape(str(value), quote=False)


def _table(frame: pd.DataFrame) -> None:
    """``st.table`` reads its cells and headers as Markdown: strings go through :func:`text`; numbers stay numbers."""
    shown = frame.copy()
    for col in shown.columns:
        if shown[col].dtype == object or pd.api.types.is_string_dtype(shown[col]):
            shown[col] = [text(v) if isinstance(v, str) else v for v in shown[col]]
    shown.index = [text(i) if isinstance(i, str) else i for i in shown.index]
    shown.columns = [text(c) if isinstance(c, str) else c for c in shown.columns]
    st.table(shown)

def _safe_upload_path(path: str) -> Path | None:
    """Only files under the app's upload folder are shown."""
    root = resources.settings().upload_dir.resolve()
    candidate = Path(path).resolve()
    return candidate if candidate.is_relative_to(root) and candidate.is_file() else None


def _show_image(image: Image.Image, *, caption: str = "", crisp: bool | None = None) -> None:
    """An image at a readable size (long side at least 256 px), and a "Zoom" button that shows it larger.
    The caption (a file name from the upload) is Markdown to Streamlit: it goes through :func:`text`."""
    caption = text(caption) if caption else None
    st.image(scaled_to(image, DISPLAY_PIXELS, crisp=crisp), caption=caption, output_format="PNG")
    with st.popover("Zoom", help="show the image larger"):
        st.image(scaled_to(image, ZOOM_PIXELS, crisp=crisp), caption=caption, output_format="PNG")


def show_item(data: Any, data_type: str = "any", display_columns: list[str] | None = None) -> None:
    """Draw one item; for table rows, only ``display_columns`` (all fields when None)."""
    if is_image_array(data):
        _show_image(array_to_image(data), crisp=True)
    elif isinstance(data, dict) and "image_path" in data:
        path = _safe_upload_path(str(data["image_path"]))
        if path is None:
            st.warning("This item's image file is missing.")
        else:
            try:
                with Image.open(path) as opened:
                    image = opened.convert("RGBA" if opened.mode in ("RGBA", "LA", "P") else "RGB")
            except OSError:
                st.warning("This item's image file cannot be read.")
            else:
                _show_image(image, caption=str(data.get("name", "")))
    elif isinstance(data, str):
        with st.container(border=True):
            st.text(data)
    elif isinstance(data, (dict, pd.Series)):
        row = data.to_dict() if isinstance(data, pd.Series) else data
        if display_columns:
            row = {k: v for k, v in row.items() if k in display_columns}
        _table(pd.DataFrame({"value": [str(v) for v in row.values()]}, index=[str(k) for k in row]))
    elif isinstance(data, np.ndarray):
        _table(pd.DataFrame(np.atleast_2d(data)))
    else:
        with st.container(border=True):
            st.text(repr(data))


SNIPPET_CHARS = 80
THUMB_PIXELS = 64


def snippet(data: Any, display_columns: list[str] | None = None, limit: int = SNIPPET_CHARS) -> str:
    """An item in one short line of text: the start of its text, an image's file name, a table row's shown values."""
    if isinstance(data, dict) and "image_path" in data:
        text = str(data.get("name") or Path(str(data["image_path"])).name)
    elif isinstance(data, str):
        text = " ".join(data.split())
    elif isinstance(data, dict):
        row = {k: v for k, v in data.items() if not display_columns or k in display_columns}
        text = ", ".join(f"{k}: {v}" for k, v in row.items())
    elif is_image_array(data):
        shape = np.asarray(data).shape
        text = "image " + " x ".join(map(str, shape))
    else:
        text = " ".join(repr(data).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def thumbnail(data: Any, pixels: int = THUMB_PIXELS) -> str | None:
    """A small PNG of an image item as a data URL (for a table's image column), or None for other items."""
    try:
        if is_image_array(data):
            image = array_to_image(data)
        elif isinstance(data, dict) and "image_path" in data and (path := _safe_upload_path(str(data["image_path"]))) is not None:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        else:
            return None
    except OSError:
        return None
    image = image.copy()
    image.thumbnail((pixels, pixels))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def marks_text(value: Any, label_mode: str, data: Any) -> str:
    """Spans or boxes as one line of text: ``Ada Lovelace (PER), Zürich (LOC)``, ``2 boxes: cat, dog``; ``[]`` as
    "nothing to mark", no value as a dash."""
    if value is None:
        return "—"
    if not isinstance(value, list) or not value:
        return "nothing to mark" if value == [] else str(value)
    if label_mode == marks.SPANS:
        try:
            text = marks.item_text(data)
        except ValidationError:
            text = None

        def covered(m: dict) -> str:
            return text[m["start"]:m["end"]] if text is not None else f"{m.get('start')}-{m.get('end')}"
        return ", ".join(f"{covered(m)} ({m.get('label')})" for m in value if isinstance(m, dict))
    labels = ", ".join(str(m.get("label")) for m in value if isinstance(m, dict))
    return f"{len(value)} box{'es' if len(value) != 1 else ''}: {labels}"


def _natural_image(data: Any) -> Image.Image | None:
    """An image item at its natural size (an array unscaled, a file of the upload folder), or None."""
    try:
        if is_image_array(data):
            return array_to_image(data, size=0)
        if isinstance(data, dict) and "image_path" in data and (path := _safe_upload_path(str(data["image_path"]))) is not None:
            with Image.open(path) as opened:
                return opened.convert("RGBA" if opened.mode in ("RGBA", "LA", "P") else "RGB")
    except OSError:
        return None
    return None


def image_data_url(data: Any) -> str | None:
    """An image item at its natural size as a data URL (for the box widget, which draws boxes in the image's own
    pixels): an image file of the upload folder as its own bytes (a PNG or JPEG upload is never decoded and encoded
    again: a 1600 x 1067 photo took 525 ms as a new PNG), an image array as a PNG of what
    :func:`superintendent.images.array_to_image` shows, unscaled. None for anything else, or a file that is missing
    or unreadable."""
    if isinstance(data, dict) and "image_path" in data:
        path = _safe_upload_path(str(data["image_path"]))
        kind = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower()) if path else None
        if path is not None and kind is not None:
            try:
                return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
            except OSError:
                return None
    image = _natural_image(data)
    if image is None:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


BOX_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#0f9ea8", "#c71585", "#808000", "#9a6324", "#000075")


def show_boxes(data: Any, boxes: list[dict[str, Any]], options: list[Any], *, caption: str = "") -> None:
    """An image item with ``boxes`` (image pixels) drawn on it, each in its option's colour with its label: a picture,
    read only (the Review page shows each labeller's boxes so). The labels are drawn as pixels, never as markup."""
    image = _natural_image(data)
    if image is None:
        st.warning("This item's image is missing or cannot be read.")
        return
    shown = scaled_to(image.convert("RGB"), DISPLAY_PIXELS, crisp=max(image.size) <= 64)
    scale = shown.width / image.width
    draw = ImageDraw.Draw(shown)
    font = ImageFont.load_default(size=max(12, shown.width // 40))
    for box in boxes:
        index = next((i for i, o in enumerate(options) if o == box.get("label")), len(options))
        colour = BOX_COLOURS[index % len(BOX_COLOURS)]
        x0, y0 = box["x"] * scale, box["y"] * scale
        x1, y1 = x0 + box["width"] * scale, y0 + box["height"] * scale
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=max(2, shown.width // 200))
        label = str(box.get("label"))
        left, top, right, bottom = draw.textbbox((x0, y0), label, font=font)
        lift = bottom - top + 4
        y_text = y0 - lift if y0 - lift >= 0 else y0
        draw.rectangle((x0, y_text, x0 + right - left + 6, y_text + lift), fill=colour)
        draw.text((x0 + 3, y_text + 2 - (top - y0)), label, fill="white", font=font)
    st.image(shown, caption=text(caption) if caption else None, output_format="PNG")


def content_columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The column configuration that shows a "thumbnail" column of data URLs as pictures."""
    return {"thumbnail": st.column_config.ImageColumn("thumbnail", width="small")} if any(r.get("thumbnail") for r in rows) else {}
