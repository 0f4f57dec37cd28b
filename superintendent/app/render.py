"""Show one item by what it is: an image array, an image file, text, or a table row. Text is always shown as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from superintendent.app import resources
from superintendent.images import array_to_image, is_image_array

def _safe_upload_path(path: str) -> Path | None:
    """Only files under the app's upload folder are shown."""
    root = resources.settings().upload_dir.resolve()
    candidate = Path(path).resolve()
    return candidate if candidate.is_relative_to(root) and candidate.is_file() else None


def show_item(data: Any, data_type: str = "any", display_columns: list[str] | None = None) -> None:
    """Draw one item; for table rows, only ``display_columns`` (all fields when None)."""
    if is_image_array(data):
        st.image(array_to_image(data), output_format="PNG")
    elif isinstance(data, dict) and "image_path" in data:
        path = _safe_upload_path(str(data["image_path"]))
        if path is None:
            st.warning("This item's image file is missing.")
        else:
            st.image(str(path), caption=str(data.get("name", "")))
    elif isinstance(data, str):
        with st.container(border=True):
            st.text(data)
    elif isinstance(data, (dict, pd.Series)):
        row = data.to_dict() if isinstance(data, pd.Series) else data
        if display_columns:
            row = {k: v for k, v in row.items() if k in display_columns}
        st.table(pd.DataFrame({"value": [str(v) for v in row.values()]}, index=[str(k) for k in row]))
    elif isinstance(data, np.ndarray):
        st.table(pd.DataFrame(np.atleast_2d(data)))
    else:
        with st.container(border=True):
            st.text(repr(data))
