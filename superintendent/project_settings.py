"""Every setting a project has, its default and its checks, in one pydantic model.

:class:`ProjectSettings` is the one place where a project's settings are
validated: :func:`superintendent.queue.create_project` checks the settings it
is given, :func:`superintendent.queue.update_project` checks the project's
current settings merged with the changes, as a whole. Unknown names are
refused, so a misspelt setting is an error instead of a silent no-op.

Use :meth:`ProjectSettings.check` (not the constructor) to validate: it turns
pydantic's error into :class:`~superintendent.validation.ValidationError`,
whose message names each bad setting, what came and what to give instead.
Nothing here touches the database.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from superintendent.validation import ACQUISITION_NAMES, DATA_TYPES, DEFAULT_ACQUISITION, LABEL_MODES, ValidationError, check_options

NAME_MAX_CHARS = 200  # the width of sp_project.name
GUIDELINES_MAX_CHARS = 20_000
DESCRIPTION_MAX_CHARS = 300


def _whole(value: Any) -> int | None:
    """``value`` as an int if it is a whole number (bool is not), else None."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    return None


def _real(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (bool is not), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value):
        return float(value)
    return None


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False; got {value!r}")


def _optional_text(value: Any, name: str, max_chars: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string or None; got {type(value).__name__} {value!r}")
    value = value.strip()
    if len(value) > max_chars:
        raise ValueError(f"{name} may have at most {max_chars} characters; got {len(value)}")
    return value or None


def _columns(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a list of column names such as ['title', 'body'], or None; got {value!r}")
    out: list[str] = []
    for column in value:
        if isinstance(column, np.str_):
            column = str(column)
        if not isinstance(column, str) or not column.strip():
            raise ValueError(f"{name} must hold column names (non-empty strings); got {column!r}")
        if column in out:
            raise ValueError(f"column {column!r} is given twice in {name}; name each column once")
        out.append(column)
    return out


class ProjectSettings(BaseModel):
    """A project's settings, checked; one field per setting, each with its default.

    Build it with :meth:`check` (new settings) or :meth:`merge` (a project's
    current settings with changes); both raise
    :class:`~superintendent.validation.ValidationError`.
    """

    # protected_namespaces=(): model_preset, model_factory and model_columns are settings, not pydantic's model_* methods.
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    name: str = Field(description=f"Unique project name, 1 to {NAME_MAX_CHARS} characters (surrounding spaces are dropped).")
    data_type: str = Field(default="any", description=f"What items are, for how they are shown: one of {', '.join(DATA_TYPES)}.")
    label_mode: str = Field(default="single", description="The project's kind: 'single': one label per item; 'multi': a list of "
                                                          "labels per item; 'spans': marked character ranges of a text, each with an option; "
                                                          "'boxes': rectangles on an image, each with an option.")
    options: list[Any] = Field(default_factory=list, description="The label options (distinct strings or numbers); empty: any label.")
    allow_free_text: bool = Field(default=False, description="Labellers may type a label that is not an option.")
    model_preset: str | None = Field(default=None, description="Name of a model preset (superintendent.learning.MODEL_PRESETS); None: no model.")
    model_factory: str | None = Field(default=None, description="A model factory 'package.module:function' (code: set by admins only); "
                                                               "takes precedence over model_preset.")
    acquisition_function: str = Field(default=DEFAULT_ACQUISITION, description=f"How the model ranks items: one of {', '.join(ACQUISITION_NAMES)}.")
    shuffle_prop: float = Field(default=0.1, description="Share of the queue order given to random picks, from 0 to 1.")
    retrain_interval_seconds: float | None = Field(default=None, description="Retrain every this many seconds; None: not on a timer.")
    retrain_interval_n_labels: int = Field(default=0, description="Retrain after this many new labels; 0: not on a label count.")
    annotations_per_item: int = Field(default=1, description="Labels wanted per item from different labellers (overlap), 1 to 100.")
    lease_seconds: int = Field(default=300, description="How long a claimed item stays with its labeller (seconds, at least 5).")
    show_hints: bool = Field(default=False, description="Show the latest model's guess to labellers.")
    display_columns: list[str] | None = Field(default=None, description="Table rows: the fields labellers see; None: all.")
    model_columns: list[str] | None = Field(default=None, description="Table rows: the fields the model gets; None: all.")
    diversity_window: int | None = Field(default=None, description="For a '*_diverse' acquisition function: items per round "
                                                                   "(at least 1); None: the labels expected before the next retrain "
                                                                   "(8 when there are no recent labels).")
    guidelines: str = Field(default="", description="Guidelines for labellers (Markdown, raw HTML not rendered), shown on the Label page.")
    option_descriptions: dict[str, str] = Field(default_factory=dict, description="A short description per label option "
                                                "{option: text}, shown as the option button's help.")
    archived: bool = Field(default=False, description="Archived: hidden from labellers and reviewers, data kept; reversible.")

    # ------------------------------------------------------------------ checks (each message names the setting, what came, the fix)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("a project needs a non-empty name")
        value = value.strip()
        if len(value) > NAME_MAX_CHARS:
            raise ValueError(f"a project name may have at most {NAME_MAX_CHARS} characters; got {len(value)}")
        return value

    @field_validator("data_type", mode="before")
    @classmethod
    def _data_type(cls, value: Any) -> str:
        if value not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {', '.join(DATA_TYPES)}; got {value!r}")
        return value

    @field_validator("label_mode", mode="before")
    @classmethod
    def _label_mode(cls, value: Any) -> str:
        if value not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}; got {value!r}")
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _options(cls, value: Any) -> list[Any]:
        return check_options(value)

    @field_validator("guidelines", mode="before")
    @classmethod
    def _guidelines(cls, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError(f"guidelines must be text (Markdown); got {type(value).__name__} {value!r}")
        if len(value) > GUIDELINES_MAX_CHARS:
            raise ValueError(f"guidelines may have at most {GUIDELINES_MAX_CHARS:,} characters; got {len(value):,}")
        return value.strip()

    @field_validator("option_descriptions", mode="before")
    @classmethod
    def _option_descriptions(cls, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"option_descriptions must map options to short texts, e.g. {{'cat': 'any cat'}}; got {value!r}")
        out: dict[str, str] = {}
        for option, text in value.items():
            if not isinstance(text, str):
                raise ValueError(f"the description of option {option!r} must be text; got {text!r}")
            if len(text.strip()) > DESCRIPTION_MAX_CHARS:
                raise ValueError(f"the description of option {option!r} may have at most {DESCRIPTION_MAX_CHARS} characters; got {len(text.strip())}")
            if text.strip():
                out[str(option)] = text.strip()
        return out

    @model_validator(mode="after")
    def _marks_need_options(self) -> Self:
        if self.label_mode in ("spans", "boxes"):
            kind = "text" if self.label_mode == "spans" else "image"
            if not self.options:
                raise ValueError(f"a {self.label_mode} project needs its options (what a mark can be, e.g. PER, ORG, LOC)")
            if self.allow_free_text:
                raise ValueError(f"a {self.label_mode} project's marks take one of its options: allow_free_text must be off")
            if self.data_type not in (kind, "any"):
                raise ValueError(f"a {self.label_mode} project labels {kind} items: its data type (data_type) must be '{kind}' "
                                 f"(or 'any'); got {self.data_type!r}")
        return self

    @model_validator(mode="after")
    def _descriptions_name_options(self) -> Self:
        unknown = sorted(set(self.option_descriptions) - {str(o) for o in self.options})
        if unknown:
            raise ValueError(f"option_descriptions name options the project does not have: {', '.join(map(repr, unknown))}; "
                             f"options: {', '.join(map(str, self.options)) or 'none'}")
        return self

    @field_validator("allow_free_text", "show_hints", "archived", mode="before")
    @classmethod
    def _flags(cls, value: Any, info: pydantic.ValidationInfo) -> bool:
        return _flag(value, info.field_name)

    @field_validator("model_preset", mode="before")
    @classmethod
    def _model_preset(cls, value: Any) -> str | None:
        return _optional_text(value, "model_preset", 100)

    @field_validator("model_factory", mode="before")
    @classmethod
    def _model_factory(cls, value: Any) -> str | None:
        value = _optional_text(value, "model_factory", 300)
        if value is not None:
            module_name, _, attr = value.partition(":")
            if not module_name or not attr:
                raise ValueError(f"a model factory is written 'package.module:function'; got {value!r}")
        return value

    @field_validator("acquisition_function", mode="before")
    @classmethod
    def _acquisition_function(cls, value: Any) -> str:
        names = ", ".join(ACQUISITION_NAMES)
        if not isinstance(value, str):
            raise ValueError(f"a project's acquisition_function is a name, one of: {names}; got {type(value).__name__} {value!r} "
                             "(a callable can rank items only in a retrain started from Python: Superintendent(acquisition_function=...))")
        key = value.strip().lower()
        if key not in ACQUISITION_NAMES:
            raise ValueError(f"unknown acquisition function {value!r}; choose one of: {names}")
        return key

    @field_validator("shuffle_prop", mode="before")
    @classmethod
    def _shuffle_prop(cls, value: Any) -> float:
        number = _real(value)
        if number is None or not 0.0 <= number <= 1.0:
            raise ValueError(f"shuffle_prop must be a number between 0 and 1; got {value!r}")
        return number

    @field_validator("retrain_interval_seconds", mode="before")
    @classmethod
    def _retrain_interval_seconds(cls, value: Any) -> float | None:
        if value is None:
            return None
        number = _real(value)
        if number is None or number <= 0:
            raise ValueError(f"retrain_interval_seconds must be positive or None; got {value!r}")
        return number

    @field_validator("retrain_interval_n_labels", mode="before")
    @classmethod
    def _retrain_interval_n_labels(cls, value: Any) -> int:
        number = _whole(value)
        if number is None or number < 0:
            raise ValueError(f"retrain_interval_n_labels must be a whole number of at least 0; got {value!r}")
        return number

    @field_validator("annotations_per_item", mode="before")
    @classmethod
    def _annotations_per_item(cls, value: Any) -> int:
        number = _whole(value)
        if number is None or not 1 <= number <= 100:
            raise ValueError(f"annotations_per_item must be a whole number from 1 to 100; got {value!r}")
        return number

    @field_validator("lease_seconds", mode="before")
    @classmethod
    def _lease_seconds(cls, value: Any) -> int:
        number = _whole(value)
        if number is None or number < 5:
            raise ValueError(f"lease_seconds must be a whole number of at least 5; got {value!r}")
        return number

    @field_validator("display_columns", "model_columns", mode="before")
    @classmethod
    def _column_lists(cls, value: Any, info: pydantic.ValidationInfo) -> list[str] | None:
        return _columns(value, info.field_name)

    @field_validator("diversity_window", mode="before")
    @classmethod
    def _diversity_window(cls, value: Any) -> int | None:
        if value is None:
            return None
        number = _whole(value)
        if number is None or number < 1:
            raise ValueError(f"diversity_window must be a whole number of at least 1 (labellers claiming together); got {value!r}")
        return number

    # ------------------------------------------------------------------ the one place that validates

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name, in declaration order."""
        return tuple(cls.model_fields)

    @classmethod
    def check(cls, **values: Any) -> Self:
        """The settings ``values`` give (defaults for the rest), checked; :class:`ValidationError` lists every problem."""
        try:
            return cls(**values)
        except pydantic.ValidationError as exc:
            raise ValidationError(_message(exc)) from None

    @classmethod
    def merge(cls, current: Any, changes: Mapping[str, Any]) -> Self:
        """``current``'s settings (read as attributes, e.g. of a ``Project``) with ``changes`` applied, checked as a whole."""
        return cls.check(**{**{name: getattr(current, name) for name in cls.model_fields}, **changes})


# The model a new project gets unless the admin picks another one or "no model" (names of superintendent.learning.MODEL_PRESETS).
DEFAULT_MODEL_PRESETS = {"image": "logistic_regression", "text": "tfidf_logistic_regression", "tabular": "gradient_boosting"}
# By kind first: a spans project gets the token model whatever its data type; a boxes project has no in-app model (None).
DEFAULT_MARK_PRESETS = {"spans": "token_crf", "boxes": None}


def default_model_preset(data_type: str, label_mode: str = "single") -> str | None:
    """The model preset that suits a project's kind and data type: spans -> the token model, boxes -> none (no in-app
    model), else by data type (images, text, tables); None for 'any', whose items may be anything."""
    if label_mode in DEFAULT_MARK_PRESETS:
        return DEFAULT_MARK_PRESETS[label_mode]
    return DEFAULT_MODEL_PRESETS.get(data_type)


_MOVED_OUT_OF_SETTINGS = ("display_columns", "model_columns", "diversity_window")


def _unknown_message(names: list[str]) -> str:
    known = ProjectSettings.names()
    hints = []
    for name in names:
        if name == "settings":
            hints.append(f"'settings' is no longer a bag of extras: pass {', '.join(_MOVED_OUT_OF_SETTINGS)} as settings of their own")
        elif close := difflib.get_close_matches(name, known, n=1):
            hints.append(f"did you mean {close[0]!r} for {name!r}?")
    plural = "s" if len(names) > 1 else ""
    message = f"unknown project setting{plural}: {', '.join(repr(n) for n in names)}; a project's settings are: {', '.join(known)}"
    return message + ("; " + "; ".join(hints) if hints else "")


def _message(exc: pydantic.ValidationError) -> str:
    """One line per bad setting, in our words: pydantic's value errors carry our message, the rest are phrased here."""
    lines: list[str] = []
    unknown: list[str] = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            unknown.append(field)
        elif error["type"] == "value_error" and "error" in error.get("ctx", {}):
            lines.append(str(error["ctx"]["error"]))
        elif error["type"] == "missing":
            lines.append("a project needs a non-empty name" if field == "name" else f"the project setting {field} is required")
        else:
            lines.append(f"{field}: {error['msg'].lower()}; got {error.get('input')!r}")
    if unknown:
        lines.insert(0, _unknown_message(unknown))
    return "\n".join(lines)
