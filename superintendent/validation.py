"""Input checks, in one place. Each error names the input, what was expected, what came, and the fix.

Nothing here touches the database: callers check first, then write, so bad
input changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from superintendent import serialization
from superintendent.al.acquisition import ACQUISITION_NAMES, DEFAULT_ACQUISITION  # re-exported: the names a project may store
from superintendent.config import Settings, get_settings
from superintendent.labels import NO_MATCH, match_option

# "<name>_diverse": the same ranking, with the top of the queue kept diverse for labellers claiming together.
LABEL_MODES = ("single", "multi", "spans", "boxes")  # spans / boxes: lists of marks on the item (superintendent.marks)
DATA_TYPES = ("image", "text", "tabular", "any")  # how a project's items are shown
# A project's settings are checked by superintendent.project_settings.ProjectSettings.


class SuperintendentError(Exception):
    """Base class of superintendent's own errors."""


class ValidationError(SuperintendentError, ValueError):
    """Input that cannot be used; the message says why and what to do."""


class NotFoundError(SuperintendentError, LookupError):
    """A project, item or user that does not exist."""


class ConflictError(SuperintendentError, RuntimeError):
    """The request clashes with what somebody else is doing (e.g. the item is held by another labeller)."""


def _label_str(options: Sequence[Any]) -> str:
    shown = ", ".join(repr(o) if not isinstance(o, str) else o for o in list(options)[:20])
    return shown + (", ..." if len(options) > 20 else "")


def _lower_bound(setting: str) -> int:
    """The smallest value ``setting`` may be given (its ``ge``): a label within it needs no look at the settings."""
    return next(m.ge for m in Settings.model_fields[setting].metadata if hasattr(m, "ge"))


# Labels this short are within every allowed limit, so the common case costs no settings look-up (about 20 µs).
_TEXT_ALWAYS_FITS = _lower_bound("max_label_chars")
_JSON_ALWAYS_FITS = _lower_bound("max_label_json_chars")


def check_options(options: Any) -> list[Any]:
    """Label options: a list of distinct, non-empty strings, ints or floats (possibly empty = any label).

    At most ``max_options`` of them (setting), each text at most
    ``max_label_chars`` characters. Linear in the number of options.
    """
    if options is None:
        return []
    if isinstance(options, (str, bytes)) or not isinstance(options, (Sequence, np.ndarray, pd.Index, set, frozenset)):
        raise ValidationError(f"options must be a list of labels such as ['cat', 'dog']; got {type(options).__name__}")
    settings = get_settings()
    if len(options) > settings.max_options:
        raise ValidationError(f"a project may have at most {settings.max_options:,} label options; got {len(options):,}. "
                              "For open-ended labels allow free text instead (allow_free_text), or raise SUPERINTENDENT_MAX_OPTIONS")
    out: list[Any] = []
    seen: set[Any] = set()  # str, int and float hash alike when equal (1 == 1.0), as `in` on a list compared them
    for option in options:
        if isinstance(option, np.generic):
            option = option.item()
        if isinstance(option, bool) or not isinstance(option, (str, int, float)):
            raise ValidationError(f"each label option must be a string or a number; got {option!r} ({type(option).__name__})")
        if isinstance(option, float) and not math.isfinite(option):
            raise ValidationError(f"label options must be finite numbers; got {option!r}")
        if isinstance(option, str):
            if not option.strip():
                raise ValidationError("label options must not be empty strings")
            if len(option) > settings.max_label_chars:
                raise ValidationError(f"a label option may have at most {settings.max_label_chars:,} characters; option {len(out) + 1} "
                                      f"has {len(option):,} ({option[:40]!r}...). Shorten it (put the explanation in the option's "
                                      "description), or raise SUPERINTENDENT_MAX_LABEL_CHARS")
        if option in seen:
            raise ValidationError(f"label option {option!r} is given twice; options must be distinct")
        seen.add(option)
        out.append(option)
    return out


def _canonical(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_text(value: str, where: str) -> None:
    """A text label: not empty or only spaces, at most ``max_label_chars`` characters."""
    if not value.strip():
        raise ValidationError(f"a label{where} must not be empty or only spaces; choose or type a label, or skip the item")
    if len(value) > _TEXT_ALWAYS_FITS:
        limit = get_settings().max_label_chars
        if len(value) > limit:
            raise ValidationError(f"a label{where} may have at most {limit:,} characters; got {len(value):,} "
                                  f"({value[:40]!r}...). Shorten it, or raise SUPERINTENDENT_MAX_LABEL_CHARS")


def _check_json_size(value: Any, where: str) -> None:
    """A label that is not one text or number (a multi-label list, a structured label): its stored JSON at most ``max_label_json_chars``."""
    if isinstance(value, (str, int, float)):
        return
    if isinstance(value, Sequence) and len(value) <= 20 and all(isinstance(v, (int, float)) or (isinstance(v, str) and len(v) <= 40) for v in value):
        return  # a short list of short labels: always far within the smallest limit, no need to measure
    size = len(serialization.dumps(value))
    if size > _JSON_ALWAYS_FITS:
        limit = get_settings().max_label_json_chars
        if size > limit:
            raise ValidationError(f"a label{where} may take at most {limit:,} characters as stored JSON; this one takes {size:,}. "
                                  "Split it up, or raise SUPERINTENDENT_MAX_LABEL_JSON_CHARS")


def check_label(value: Any, *, options: Sequence[Any], label_mode: str = "single", allow_free_text: bool = False, project: str = "") -> Any:
    """Check one label against a project's settings; return it in canonical form.

    Spans and boxes are checked against the item they mark, by :func:`superintendent.marks.check_marks`.

    Single-label: one of ``options`` (or, with free text allowed, any non-empty
    string). Multi-label: a list of such labels, stored de-duplicated in option
    order. With no options, any JSON-serialisable value is accepted. Never
    accepted: None, NaN, empty or blank text, text longer than the
    ``max_label_chars`` setting, a label whose JSON is longer than ``max_label_json_chars``.
    """
    where = f" of project {project!r}" if project else ""
    if label_mode in ("spans", "boxes"):
        raise TypeError(f"a {label_mode} value is checked against its item: superintendent.marks.check_marks")
    if label_mode == "multi":
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, set, frozenset, np.ndarray)):
            raise ValidationError(f"a multi-label project{where} takes a list of labels; got {value!r}")
        if len(value) > _JSON_ALWAYS_FITS // 2 and len(value) > get_settings().max_label_json_chars // 2:
            raise ValidationError(f"a multi-label label{where} of {len(value):,} labels is too long to store; choose fewer labels")
        labels = [check_label(v, options=options, label_mode="single", allow_free_text=allow_free_text, project=project) for v in value]
        try:
            unique = list(dict.fromkeys(labels))  # linear; equal labels (1 and 1.0) count once, as with ==
        except TypeError:  # unhashable labels (lists, in a project without options)
            unique = []
            for label in labels:
                if label not in unique:
                    unique.append(label)
        order = {o: i for i, o in enumerate(options)} if options else {}
        checked = sorted(unique, key=lambda lab: (order.get(lab, len(order)), str(lab)))
        if not options:
            _check_json_size(checked, where)
        return checked
    value = _canonical(value)
    if value is None:
        raise ValidationError(f"a label{where} must not be None; use skip to pass over an item")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"a label{where} must not be NaN or infinite; got {value!r}")
    if isinstance(value, str):
        _check_text(value, where)
    if not options:
        _check_json_size(value, where)
        return value
    matched = match_option(value, options, by_text=False)
    if matched is not NO_MATCH:
        return matched
    if allow_free_text and isinstance(value, str):
        return value.strip()
    raise ValidationError(f"label {value!r} is not an option{where} (options: {_label_str(options)})")


def split_features(features: Any) -> list[Any]:
    """Turn the features a user passes into one value per item.

    A numpy array gives its rows (``features[i]``), a DataFrame its rows as
    Series, a Series or any other sequence its elements. Items that are arrays
    must all have one shape: mixed shapes raise :class:`ValidationError`.
    """
    if features is None:
        return []
    if isinstance(features, pd.DataFrame):
        items: list[Any] = [row for _, row in features.iterrows()]
    elif isinstance(features, np.ndarray):
        if features.ndim == 0:
            raise ValidationError("features must be a sequence of items; got a 0-dimensional array")
        items = list(features)
    elif isinstance(features, pd.Series):
        items = list(features.array)
    elif isinstance(features, (str, bytes, dict)) or not hasattr(features, "__len__") or not hasattr(features, "__getitem__"):
        raise ValidationError(f"features must be a numpy array, a pandas DataFrame or Series, or a list of items; got {type(features).__name__}")
    else:
        items = list(features)
    shapes = {np.shape(x) for x in items if isinstance(x, np.ndarray)}
    n_arrays = sum(isinstance(x, np.ndarray) for x in items)
    if len(shapes) > 1:
        first = next(i for i, x in enumerate(items) if isinstance(x, np.ndarray))
        odd = next(i for i, x in enumerate(items) if isinstance(x, np.ndarray) and np.shape(x) != np.shape(items[first]))
        raise ValidationError(
            f"features have mixed shapes: item {first} has shape {np.shape(items[first])} but item {odd} has shape {np.shape(items[odd])}; "
            "give every item the same shape (or store file paths and load them when shown)"
        )
    if 0 < n_arrays < len(items):
        odd = next(i for i, x in enumerate(items) if not isinstance(x, np.ndarray))
        raise ValidationError(f"features mix arrays and other values: item {odd} is a {type(items[odd]).__name__}, not an array")
    return items


def split_labels(labels: Any, n_items: int) -> list[Any] | None:
    """Labels given beside features: one per item, None (or NaN) for an unlabelled item."""
    if labels is None:
        return None
    if isinstance(labels, (pd.Series, pd.Index)):
        values = list(labels.array)
    elif isinstance(labels, np.ndarray):
        values = list(labels)
    elif isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise ValidationError(f"labels must be a sequence with one label per item; got {type(labels).__name__}")
    else:
        values = list(labels)
    if len(values) != n_items:
        raise ValidationError(f"labels must have one entry per item: got {len(values)} labels for {n_items} items")
    out: list[Any] = []
    for v in values:
        v = _canonical(v)
        is_missing = v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA
        out.append(None if is_missing else v)
    return out
