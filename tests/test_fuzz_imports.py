"""Property test of the task-file importers (issue 13, item 6), on SQLite and PostgreSQL.

Label Studio tasks and items JSON Lines are generated with control
characters in every field (ids, text, labels, annotator names, data keys),
sometimes a NUL or a lone surrogate in one of them, and text nested from 0
to 1,200 levels deep. Whatever comes, the upload is either imported exactly
(every item's id and data, every annotation under its annotator's
import-only account, as the readers document: Label Studio names are
lower-cased with runs of whitespace made "-", JSONL names stripped) or
refused with a ValidationError that stores nothing; and it is refused
exactly when a string holds a NUL or a lone surrogate, the JSON nests
deeper than the limit, or the first row has a blank field name (the
fields become the project's columns). Any other exception fails the test.

Marked ``fuzz``: the default run uses the short hypothesis profile (50
examples), ``pytest -m fuzz`` the long one (see tests/conftest.py).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from superintendent import importing, ingest, queue, serialization
from superintendent.store import Annotation, Item, Project, User, session_scope
from superintendent.validation import ValidationError

MAX_JSON_DEPTH = 100  # the documented limit (docs/admin.md); ingest.checks.MAX_JSON_DEPTH
BAD = ["\x00", "\ud800", "\udfff", "\udbff"]  # what no database column stores (NUL) or is no text (lone surrogates)
IMAGE_KEYS = {"image", "img", "image_url", "imageurl", "picture", "photo"}  # a Label Studio key read as an image (not text)
CONTROL = st.sampled_from(list("\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1c\x1f\x7f\x80\x85\x9f\u2028\u200b\ufeff"))
SAFE = st.one_of(CONTROL, st.characters(categories=["L", "N", "Zs"], max_codepoint=0x2FFF))
ROW_KEY = "n"  # the second key of a table row
_counter = itertools.count()


def text(min_size=1):
    return st.text(SAFE, min_size=min_size, max_size=6)


def ls_name(name: str) -> str:
    return re.sub(r"\s+", "-", name.strip().lower())


def jl_name(name: str) -> str:
    return name.strip()


@dataclass(frozen=True)
class Nested:
    """A text inside ``depth`` lists (written by hand: json.dumps itself stops near 1,000 levels)."""

    leaf: str
    depth: int

    def value(self) -> object:
        value: object = self.leaf
        for _ in range(self.depth):
            value = [value]
        return value

    def marker(self, i: int) -> str:
        return f"\ue000{i}\ue000"

    def json(self) -> str:
        return "[" * self.depth + json.dumps(self.leaf) + "]" * self.depth


@dataclass
class Upload:
    fmt: str
    ids: list[str]
    keys: list[str]
    values: list[Nested]  # each item's text, nested in lists
    labels: list[str]
    annotations: list[list[tuple[str, str]]]  # per item: (annotator as in the file, label)

    def document(self) -> list[object]:
        """The JSON values of the file: one list of tasks, or one object per line (texts as :class:`Nested`)."""
        if self.fmt == "label-studio":
            return [[{"id": i, "data": {k: v, ROW_KEY: "row"}, "annotations": [
                {"completed_by": who, "result": [{"type": "choices", "from_name": "c", "to_name": k, "value": {"choices": [lab]}}]}
                for who, lab in anns]} for i, k, v, anns in zip(self.ids, self.keys, self.values, self.annotations)]]
        return [{"external_id": i, "data": {k: v, ROW_KEY: "row"}, "annotations": [{"user": who, "value": lab} for who, lab in anns]}
                for i, k, v, anns in zip(self.ids, self.keys, self.values, self.annotations)]

    def data(self) -> bytes:
        marked = [Upload(self.fmt, self.ids, self.keys, [v.marker(i) for i, v in enumerate(self.values)], self.labels,  # type: ignore[misc]
                         self.annotations).document()]
        lines = [json.dumps(marked[0][0])] if self.fmt == "label-studio" else [json.dumps(line) for line in marked[0]]
        out = "\n".join(lines) + "\n"
        for i, v in enumerate(self.values):
            out = out.replace(json.dumps(v.marker(i)), v.json())
        return out.encode()

    def expected(self):
        norm = ls_name if self.fmt == "label-studio" else jl_name
        items = {i: {k: v.value(), ROW_KEY: "row"} for i, k, v in zip(self.ids, self.keys, self.values)}
        anns = {(i, "_import:" + norm(who)): lab for i, a in zip(self.ids, self.annotations) for who, lab in a}
        return items, anns


def depth_of(value) -> int:
    """Levels of lists and objects, the outermost being level 1 (a Nested text at level d adds its lists from there)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
        elif isinstance(v, Nested):
            deepest = max(deepest, d - 1 + v.depth)
    return deepest


def strings(value):
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, Nested):
            yield v.leaf
        elif isinstance(v, dict):
            yield from v
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


@st.composite
def uploads(draw):
    fmt = draw(st.sampled_from(["label-studio", "items-jsonl"]))
    norm = ls_name if fmt == "label-studio" else jl_name
    n = draw(st.integers(1, 3))
    ids = draw(st.lists(text(), min_size=n, max_size=n, unique=True))
    keys = draw(st.lists(text().filter(lambda k: k != ROW_KEY and k.lower() not in IMAGE_KEYS), min_size=n, max_size=n))
    depth = draw(st.one_of(st.just(0), st.integers(1, 4), st.integers(MAX_JSON_DEPTH - 4, MAX_JSON_DEPTH + 2), st.integers(590, 610),
                           st.integers(1000, 1200)))
    values = [Nested(draw(text(min_size=0)), depth if i == 0 else draw(st.integers(0, 2))) for i in range(n)]
    labels = draw(st.lists(text().filter(str.strip), min_size=1, max_size=3, unique=True))
    names = st.lists(text().filter(lambda s: norm(s)), max_size=3, unique_by=norm)
    annotations = [[(who, draw(st.sampled_from(labels))) for who in draw(names)] for _ in range(n)]
    up = Upload(fmt, ids, keys, values, labels, annotations)
    field = draw(st.sampled_from(["none", "none", "id", "text", "key", "name", "label"]))
    if field == "none" or (field == "name" and not any(annotations)):
        return up
    bad = draw(st.sampled_from(BAD))
    row = draw(st.integers(0, n - 1))
    spoil = lambda s: s[: len(s) // 2] + bad + s[len(s) // 2:]  # noqa: E731
    if field == "id":
        up.ids[row] = spoil(up.ids[row])
    elif field == "text":
        up.values[row] = Nested(spoil(up.values[row].leaf), up.values[row].depth)
    elif field == "key":
        up.keys[row] = spoil(up.keys[row])
    elif field == "name":
        row = next(i for i, a in enumerate(annotations) if a)
        who, lab = up.annotations[row][0]
        up.annotations[row][0] = (spoil(who), lab)
    else:
        old = up.labels[0]
        up.labels[0] = spoil(old)
        up.annotations = [[(who, up.labels[0] if lab == old else lab) for who, lab in a] for a in up.annotations]
    return up


def snapshot(engine):
    with session_scope(engine, write=False) as s:
        return (s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one(),
                s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one(),
                s.execute(sa.select(sa.func.count()).select_from(User)).scalar_one(),
                sorted(s.execute(sa.select(Project.name, Project.display_columns)).all(), key=str))


@pytest.mark.fuzz
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(up=uploads())
def test_a_task_file_is_imported_exactly_or_refused_with_nothing_stored(engine, tmp_path, up):
    data = up.data()
    document = up.document()
    should_refuse = (any(c in s for line in document for s in strings(line) for c in BAD)
                     or max(depth_of(line) for line in document) > MAX_JSON_DEPTH
                     or not up.keys[0].strip())  # the first row's fields become the project's columns: none may be blank
    options = [lab for lab in dict.fromkeys(up.labels) if not any(c in lab for c in BAD)] or ["cat"]
    with session_scope(engine) as s:
        project = queue.create_project(s, f"fuzz-{next(_counter)}", options=options, annotations_per_item=3)
    before = snapshot(engine)
    filename = "tasks.json" if up.fmt == "label-studio" else "items.jsonl"
    try:
        prepared = ingest.prepare_upload(filename, data, options=options, upload_dir=tmp_path / "up", fmt=up.fmt)
        importing.import_prepared(engine, project.name, prepared)
    except ValidationError as exc:
        assert snapshot(engine) == before
        assert should_refuse, f"refused a file it should import: {exc}"
        assert any(w in str(exc) for w in ("NUL", "surrogate", "nested more than", "cannot be the project's columns")), str(exc)
        return
    assert not should_refuse, "imported a file with a NUL, a lone surrogate or nesting past the limit"
    items, anns = up.expected()
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Item.external_id, Item.data).where(Item.project_id == project.id)).all()
        log = queue.annotation_log(s, queue.get_project(s, project.id))
    assert {r.external_id: serialization.loads(r.data) for r in rows} == items
    assert {(a.external_id, a.username): a.label for a in log} == anns
