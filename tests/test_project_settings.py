"""ProjectSettings: every project setting, its default and its checks, in one pydantic model (no database here)."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pydantic
import pytest

from superintendent.al import acquisition
from superintendent.project_settings import ProjectSettings
from superintendent.store.models import Project
from superintendent.validation import ACQUISITION_NAMES, ValidationError

DEFAULTS = dict(data_type="any", label_mode="single", options=[], allow_free_text=False, model_preset=None, model_factory=None,
                acquisition_function="margin", shuffle_prop=0.1, retrain_interval_seconds=None, retrain_interval_n_labels=0,
                annotations_per_item=1, lease_seconds=300, show_hints=False, display_columns=None, model_columns=None,
                diversity_window=None, guidelines="", option_descriptions={}, archived=False)


def test_defaults():
    assert ProjectSettings.check(name="pets").model_dump() == {"name": "pets", **DEFAULTS}


def test_every_setting_is_a_project_column_with_the_same_default():
    assert set(ProjectSettings.names()) == set(Project.model_fields) - {"id", "created_at"}
    stored = Project(name="pets")
    assert {k: getattr(stored, k) for k in DEFAULTS} == DEFAULTS


def test_every_setting_is_documented():
    assert [n for n, f in ProjectSettings.model_fields.items() if not f.description] == []


@pytest.mark.parametrize("name", ACQUISITION_NAMES)
def test_every_acquisition_name_is_accepted(name):
    assert ProjectSettings.check(name="p", acquisition_function=name).acquisition_function == name


def test_the_acquisition_names_are_those_the_acquisition_module_accepts():
    assert set(ACQUISITION_NAMES) == set(acquisition.ACQUISITION_NAMES)
    assert {n for n in ACQUISITION_NAMES if n.endswith("_diverse")} == {"certainty_diverse", "entropy_diverse", "margin_diverse"}


def test_values_are_normalised():
    checked = ProjectSettings.check(
        name="  pets ", acquisition_function=" Margin_Diverse", options=np.array([1, 2]), shuffle_prop=0, annotations_per_item=np.int64(2),
        lease_seconds=np.int32(60), retrain_interval_seconds=30, model_preset="", display_columns=np.array(["title", "body"]),
        model_columns=("n",), diversity_window=np.int64(3), allow_free_text=np.bool_(True))
    assert checked.model_dump() == {**DEFAULTS, "name": "pets", "acquisition_function": "margin_diverse", "options": [1, 2], "shuffle_prop": 0.0,
                                    "annotations_per_item": 2, "lease_seconds": 60, "retrain_interval_seconds": 30.0,
                                    "display_columns": ["title", "body"], "model_columns": ["n"], "diversity_window": 3,
                                    "allow_free_text": True}
    assert all(type(v) in (int, float) for v in (checked.annotations_per_item, checked.lease_seconds, checked.diversity_window))


REFUSED = [
    ("empty-name", dict(name=""), "a project needs a non-empty name"),
    ("blank-name", dict(name="   "), "a project needs a non-empty name"),
    ("name-not-text", dict(name=7), "a project needs a non-empty name"),
    ("long-name", dict(name="x" * 201), "a project name may have at most 200 characters; got 201"),
    ("data-type", dict(data_type="video"), "data_type must be one of image, text, tabular, any; got 'video'"),
    ("label-mode", dict(label_mode="many"), "label_mode must be one of single, multi, spans, boxes; got 'many'"),
    ("options-text", dict(options="cat,dog"), "options must be a list of labels such as \\['cat', 'dog'\\]; got str"),
    ("options-twice", dict(options=["cat", "cat"]), "label option 'cat' is given twice; options must be distinct"),
    ("option-bool", dict(options=[True]), "each label option must be a string or a number; got True \\(bool\\)"),
    ("option-nan", dict(options=[math.nan]), "label options must be finite numbers; got nan"),
    ("option-empty", dict(options=[" "]), "label options must not be empty strings"),
    ("free-text-yes", dict(allow_free_text="yes"), "allow_free_text must be True or False; got 'yes'"),
    ("hints-one", dict(show_hints=1), "show_hints must be True or False; got 1"),
    ("preset-number", dict(model_preset=5), "model_preset must be a string or None; got int 5"),
    ("preset-long", dict(model_preset="p" * 101), "model_preset may have at most 100 characters; got 101"),
    ("factory-form", dict(model_factory="mymodels.make"), "a model factory is written 'package.module:function'; got 'mymodels.make'"),
    ("factory-long", dict(model_factory="m:" + "f" * 299), "model_factory may have at most 300 characters; got 301"),
    ("acquisition", dict(acquisition_function="foo"),
     "unknown acquisition function 'foo'; choose one of: certainty, entropy, margin, certainty_diverse, entropy_diverse, margin_diverse"),
    ("acquisition-callable", dict(acquisition_function=len), "a project's acquisition_function is a name, one of: certainty, .*, "
     "margin_diverse; got builtin_function_or_method <built-in function len> \\(a callable can rank items only in a retrain started "
     "from Python: Superintendent\\(acquisition_function=...\\)\\)"),
    ("shuffle-high", dict(shuffle_prop=2), "shuffle_prop must be a number between 0 and 1; got 2"),
    ("shuffle-text", dict(shuffle_prop="0.5"), "shuffle_prop must be a number between 0 and 1; got '0.5'"),
    ("shuffle-bool", dict(shuffle_prop=True), "shuffle_prop must be a number between 0 and 1; got True"),
    ("shuffle-nan", dict(shuffle_prop=math.nan), "shuffle_prop must be a number between 0 and 1; got nan"),
    ("every-zero", dict(retrain_interval_seconds=0), "retrain_interval_seconds must be positive or None; got 0"),
    ("every-text", dict(retrain_interval_seconds="60"), "retrain_interval_seconds must be positive or None; got '60'"),
    ("every-infinite", dict(retrain_interval_seconds=math.inf), "retrain_interval_seconds must be positive or None; got inf"),
    ("n-labels-negative", dict(retrain_interval_n_labels=-1), "retrain_interval_n_labels must be a whole number of at least 0; got -1"),
    ("n-labels-fraction", dict(retrain_interval_n_labels=1.5), "retrain_interval_n_labels must be a whole number of at least 0; got 1.5"),
    ("overlap-zero", dict(annotations_per_item=0), "annotations_per_item must be a whole number from 1 to 100; got 0"),
    ("overlap-high", dict(annotations_per_item=101), "annotations_per_item must be a whole number from 1 to 100; got 101"),
    ("overlap-float", dict(annotations_per_item=2.0), "annotations_per_item must be a whole number from 1 to 100; got 2.0"),
    ("overlap-bool", dict(annotations_per_item=True), "annotations_per_item must be a whole number from 1 to 100; got True"),
    ("lease-short", dict(lease_seconds=4), "lease_seconds must be a whole number of at least 5; got 4"),
    ("display-text", dict(display_columns="title"), "display_columns must be a list of column names such as \\['title', 'body'\\], or None; got 'title'"),
    ("display-number", dict(display_columns=[1]), "display_columns must hold column names \\(non-empty strings\\); got 1"),
    ("model-twice", dict(model_columns=["a", "a"]), "column 'a' is given twice in model_columns; name each column once"),
    ("window-zero", dict(diversity_window=0), "diversity_window must be a whole number of at least 1 \\(labellers claiming together\\); got 0"),
    ("window-text", dict(diversity_window="eight"), "diversity_window must be a whole number of at least 1 .*; got 'eight'"),
    ("window-bool", dict(diversity_window=True), "diversity_window must be a whole number of at least 1 .*; got True"),
]


@pytest.mark.parametrize(("values", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_bad_values_are_refused_with_a_message_that_says_what_to_give(values, message):
    with pytest.raises(ValidationError, match=f"^{message}$"):
        ProjectSettings.check(**{"name": "pets", **values})


def test_the_error_is_ours_not_pydantics():
    with pytest.raises(ValidationError) as caught:
        ProjectSettings.check(name="pets", lease_seconds=1)
    assert isinstance(caught.value, ValueError) and not isinstance(caught.value, pydantic.ValidationError)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_missing_name_is_refused():
    with pytest.raises(ValidationError, match="^a project needs a non-empty name$"):
        ProjectSettings.check(options=["cat"])


def test_every_problem_is_listed_on_a_line_of_its_own():
    with pytest.raises(ValidationError) as caught:
        ProjectSettings.check(name="pets", shuffle_prop=3, lease_seconds=1, colour="red")
    assert str(caught.value).splitlines() == [
        "unknown project setting: 'colour'; a project's settings are: " + ", ".join(ProjectSettings.names()),
        "shuffle_prop must be a number between 0 and 1; got 3",
        "lease_seconds must be a whole number of at least 5; got 1",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (dict(shuffle_proportion=0.2), "unknown project setting: 'shuffle_proportion'; .*; did you mean 'shuffle_prop' for 'shuffle_proportion'\\?"),
        (dict(colour="red", size=3), "unknown project settings: 'colour', 'size'; a project's settings are: name, data_type, .*, archived$"),
        (dict(settings={"diversity_window": 2}),
         "unknown project setting: 'settings'; .*'settings' is no longer a bag of extras: pass display_columns, model_columns, "
         "diversity_window as settings of their own"),
        (dict(id=3), "unknown project setting: 'id'"),
    ],
    ids=["misspelt", "two-unknown", "old-settings-bag", "not-a-setting"],
)
def test_unknown_settings_are_refused(values, message):
    with pytest.raises(ValidationError, match=message):
        ProjectSettings.check(name="pets", **values)


def test_checked_settings_cannot_be_changed_in_place():
    checked = ProjectSettings.check(name="pets")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        checked.lease_seconds = 1


def test_merge_applies_changes_to_the_current_settings_and_checks_the_whole():
    current = SimpleNamespace(**{**DEFAULTS, "name": "pets", "options": ["cat", "dog"], "lease_seconds": 60})
    merged = ProjectSettings.merge(current, {"annotations_per_item": 3, "display_columns": ["title"]})
    assert merged.model_dump() == {**DEFAULTS, "name": "pets", "options": ["cat", "dog"], "lease_seconds": 60, "annotations_per_item": 3,
                                   "display_columns": ["title"]}
    assert ProjectSettings.merge(current, {}).model_dump() == {**DEFAULTS, "name": "pets", "options": ["cat", "dog"], "lease_seconds": 60}
    with pytest.raises(ValidationError, match="^annotations_per_item must be a whole number from 1 to 100; got 0$"):
        ProjectSettings.merge(current, {"annotations_per_item": 0})
    with pytest.raises(ValidationError, match="unknown project setting: 'colour'"):
        ProjectSettings.merge(current, {"colour": "red"})
    broken = SimpleNamespace(**{**vars(current), "label_mode": "many"})  # stored before the check existed
    with pytest.raises(ValidationError, match=re.escape("label_mode must be one of single, multi, spans, boxes; got 'many'")):
        ProjectSettings.merge(broken, {"show_hints": True})
    assert ProjectSettings.merge(broken, {"label_mode": "multi"}).label_mode == "multi"
