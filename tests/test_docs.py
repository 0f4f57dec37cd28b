"""The documentation is tested: its examples run and print what they show, its links resolve, its API and settings lists are complete.

"The documentation" is ``docs/*.md`` and ``README.md``.

* Every fenced ``python`` block runs: a file's blocks in order, in one
  fresh namespace per file, in a temporary working directory with
  ``SUPERINTENDENT_DATA_DIR`` pointed there. A block is excluded only by
  ``<!-- not-run: reason -->`` on the line right before its fence (at most
  3 such blocks in all).
* Shown output is checked. A fenced block with ``<!-- output -->`` on the
  line right before its fence (written as a ``text`` block) is the output
  of the ``python`` block right before it: that block's stdout must match
  it, line by line (trailing spaces and trailing blank lines ignored).
  ``...`` inside a line stands for any text within that line (a score, a
  timing, an id); a line that is only ``...`` stands for any number of
  lines. An output block must show more than ``...``. The comment is
  invisible on GitHub: readers see a text block right after the code (say
  "it prints" in the prose where that is not obvious). For example::

      ```python
      print(widget)
      ```

      <!-- output -->
      ```text
      <Superintendent project='default' items=4 labelled=... database=memory>
      ```
* In fenced ``bash`` blocks, every line starting with ``superintendent ``
  runs (a file's lines in order, against one temporary SQLite database set
  as ``SUPERINTENDENT_DATABASE_URL``); so do the lines that create the files
  those commands read (starting with ``printf `` or ``python -c ``). Every
  one must exit with 0. ``create-user`` gets its password on stdin;
  ``orchestrate`` lines must stop by themselves (``--max-runs``, or
  ``--project`` without ``--interval-seconds``: one retrain).
* The other lines of bash blocks are shown, not run: they install
  (``pip install``), start servers (``streamlit run``, ``docker compose``)
  or run the test suite (``bash .ci/run``, ``python -m pytest``). What the
  servers do is tested elsewhere: the web app by Streamlit's AppTest
  (tests/test_app.py and others) and in headless Chromium
  (tests/test_browser.py), the Compose file by tests/test_deploy.py.
* The signature block of docs/api.md (``Superintendent(...)``) is the
  constructor's real signature. ``json`` and ``toml`` blocks parse; the
  Label Studio task and the JSON Lines item shown in docs/admin.md are
  accepted by the importer.
* The other ``text`` blocks: docs/cli.md's synopses name exactly the
  options (and choices) of their command's parser; the image's command
  shown in docs/deployment.md is the Dockerfile's.
* Every public name of ``Superintendent``, ``ProjectQueue`` and
  ``superintendent.acquisition_functions.__all__``, and every constructor
  argument, appears in docs/api.md; every setting appears in
  docs/configuration.md as ``SUPERINTENDENT_<NAME>``.
* Every relative link points to an existing file (and, for
  ``file.md#anchor``, to an existing heading); every source path named in
  the prose (``superintendent/...``, ``tests/...``, ``pages/...``) exists,
  and every dotted name in backticks (``superintendent.queue.claim_next``)
  can be imported.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOC_FILES = sorted(DOCS.glob("*.md"))
README = ROOT / "README.md"
RUN_FILES = [*DOC_FILES, README]  # the files whose examples run
NOT_RUN = re.compile(r"^<!--\s*not-run:(?P<reason>.*?)-->\s*$")
OUTPUT = re.compile(r"^<!--\s*output\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
MAX_NOT_RUN = 3
RUN_PREFIXES = ("superintendent ",)
SETUP_PREFIXES = ("printf ", "python -c ")
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Block:
    path: Path
    lang: str
    line: int  # 1-based line of the first code line
    code: str
    not_run: str | None  # the reason, if excluded
    is_output: bool = False  # marked <!-- output -->: the shown output of the python block before it


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file (top-level fences: ``` at the start of a line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{path.name}:{i + 1}: fence never closed")
        before = lines[i - 1].strip() if i > 0 else ""
        marker = NOT_RUN.match(before)
        found.append(Block(path, m["lang"].lower(), start + 1, "\n".join(lines[start:end]),
                           marker["reason"].strip() if marker else None, is_output=OUTPUT.match(before) is not None))
        i = end + 1
    return found


def _files_with(lang: str) -> list[Path]:
    return [p for p in RUN_FILES if any(b.lang == lang for b in blocks(p))]


def _name(path: Path) -> str:
    return path.name


# --------------------------------------------------------------------------- python blocks


def test_docs_exist() -> None:
    names = {p.name for p in DOC_FILES}
    expected = {"index.md", "quickstart.md", "concepts.md", "labelling.md", "admin.md", "api.md", "examples.md",
                "configuration.md", "deployment.md", "cli.md"}
    assert expected <= names, f"missing: {sorted(expected - names)}"


def test_few_blocks_are_excluded_and_each_says_why() -> None:
    excluded = [b for p in RUN_FILES for b in blocks(p) if b.not_run is not None]
    assert len(excluded) <= MAX_NOT_RUN, [f"{b.path.name}:{b.line}" for b in excluded]
    for b in excluded:
        assert b.not_run, f"{b.path.name}:{b.line}: <!-- not-run: ... --> needs a reason"
    for p in RUN_FILES:  # a marker must sit right before a fence, or it does nothing
        lines = p.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if NOT_RUN.match(line.strip()) or OUTPUT.match(line.strip()):
                assert n + 1 < len(lines) and FENCE.match(lines[n + 1]), f"{p.name}:{n + 1}: {line.strip()} not right before a fence"


def _output_of(path: Path) -> dict[int, Block]:
    """The shown output of each python block that has one: {index of the python block in blocks(path): its output block}."""
    found = blocks(path)
    out = {}
    for i, b in enumerate(found):
        if not b.is_output:
            continue
        before = found[i - 1] if i > 0 else None
        assert before is not None and before.lang == "python" and before.not_run is None, (
            f"{path.name}:{b.line}: an <!-- output --> block must follow a python block that runs")
        assert b.lang in ("text", ""), f"{path.name}:{b.line}: write an output block as ```text"
        assert any(line.strip() not in ("", "...") for line in b.code.splitlines()), f"{path.name}:{b.line}: an output block shows nothing"
        out[i - 1] = b
    return out


def _output_pattern(shown: str) -> re.Pattern[str]:
    """``shown`` as a regular expression: ``...`` is any text within a line; a line of only ``...`` is any lines."""
    parts = []
    for line in shown.rstrip().splitlines():
        line = line.rstrip()
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(piece) for piece in line.split("...")) + r"\n")
    return re.compile("".join(parts))


def _normalised(printed: str) -> str:
    text = "\n".join(line.rstrip() for line in printed.splitlines()).rstrip()
    return text + "\n" if text else ""


def output_matches(shown: str, printed: str) -> bool:
    return _output_pattern(shown).fullmatch(_normalised(printed)) is not None


def test_output_pattern() -> None:
    assert output_matches("Score: 0.9...\n2 of 6 labelled\n", "Score: 0.931\n2 of 6 labelled   \n\n")
    assert not output_matches("Score: 0.9...\n2 of 6 labelled", "Score: 0.831\n2 of 6 labelled")
    assert not output_matches("a\nb", "a\nb\nc")  # every line printed must be shown
    assert output_matches("a\n...\nd", "a\nb\nc\nd") and output_matches("a\n...\nd", "a\nd")
    assert not output_matches("a ... b", "a x\ny b")  # ... inside a line stays within the line
    assert output_matches("[1, 2] (x)", "[1, 2] (x)")  # brackets are literal


def test_every_output_block_follows_a_python_block() -> None:
    for p in RUN_FILES:
        _output_of(p)
    shown = [p.name for p in RUN_FILES if _output_of(p)]
    for name in ("README.md", "quickstart.md", "api.md"):
        assert name in shown, f"{name} shows no checked output (<!-- output -->)"


@pytest.fixture
def doc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SUPERINTENDENT_DATABASE_URL", raising=False)
    monkeypatch.delenv("SUPERINTENDENT_WORKER_ID", raising=False)
    return tmp_path


@pytest.mark.parametrize("path", _files_with("python"), ids=_name)
def test_python_examples_run(path: Path, doc_env: Path) -> None:
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    started = time.perf_counter()
    shown_output = _output_of(path)
    for index, block in enumerate(blocks(path)):
        if block.lang != "python" or block.not_run is not None:
            continue
        code = compile(block.code, f"{path.name}:{block.line}", "exec")
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(code, namespace)  # noqa: S102 - the docs' own examples
        except Exception as exc:  # noqa: BLE001 - say which block failed
            raise AssertionError(f"the python block at {path.name}:{block.line} failed: {type(exc).__name__}: {exc}\n"
                                 f"it printed:\n{printed.getvalue()}") from exc
        sys.stdout.write(printed.getvalue())  # still visible with pytest -s
        shown = shown_output.get(index)
        if shown is not None:
            assert output_matches(shown.code, printed.getvalue()), (
                f"the python block at {path.name}:{block.line} printed\n{printed.getvalue()}\n"
                f"but {path.name}:{shown.line} shows\n{shown.code}")
    assert time.perf_counter() - started < 60, f"{path.name}: examples take too long; use smaller data"


# --------------------------------------------------------------------------- bash blocks


def _command_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, command) of the lines to run in the bash blocks of ``path``; continuations joined."""
    out: list[tuple[int, str]] = []
    for block in blocks(path):
        if block.lang not in ("bash", "sh", "shell") or block.not_run is not None:
            continue
        pending, first = "", 0
        for offset, raw in enumerate(block.code.splitlines()):
            if not pending:
                first = block.line + offset
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            line = (pending + raw).strip()
            pending = ""
            if line.startswith(RUN_PREFIXES + SETUP_PREFIXES):
                out.append((first, line))
    return out


def _files_with_commands() -> list[Path]:
    return [p for p in RUN_FILES if any(line.startswith(RUN_PREFIXES) for _, line in _command_lines(p))]


def _stops_by_itself(words: list[str]) -> bool:
    """An ``orchestrate`` command line that ends: ``--max-runs``, or one project without ``--interval-seconds`` (one retrain)."""
    def has(option: str) -> bool:
        return any(w == option or w.startswith(option + "=") for w in words)
    return has("--max-runs") or (has("--project") and not has("--interval-seconds"))


def test_stops_by_itself() -> None:
    assert _stops_by_itself(shlex.split("superintendent orchestrate --project x  # --interval-seconds 30 loops", comments=True))
    assert _stops_by_itself(shlex.split("superintendent orchestrate --all --max-runs=2"))
    assert not _stops_by_itself(shlex.split("superintendent orchestrate --project x --interval-seconds 30"))
    assert not _stops_by_itself(shlex.split("superintendent orchestrate --all"))


@pytest.mark.parametrize("path", _files_with_commands(), ids=_name)
def test_command_examples_run(path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERINTENDENT_")}
    env.update(SUPERINTENDENT_DATABASE_URL=f"sqlite:///{tmp_path / 'docs.db'}", SUPERINTENDENT_DATA_DIR=str(tmp_path / "data"))
    bindir = str(Path(sys.executable).parent)  # the `superintendent` and `python` of this interpreter first
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    for line_no, command in _command_lines(path):
        words = shlex.split(command, comments=True)
        if words[:2] == ["superintendent", "orchestrate"]:
            assert _stops_by_itself(words), (f"{path.name}:{line_no}: an orchestrate example must stop by itself "
                                             "(--max-runs, or --project without --interval-seconds)")
        stdin = PASSWORD + "\n" if words[:2] == ["superintendent", "create-user"] else ""
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, input=stdin, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, (f"{path.name}:{line_no}: `{command}` exited with {result.returncode}\n"
                                        f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}")


# --------------------------------------------------------------------------- the API and settings are all documented


def _public(cls: type) -> list[str]:
    return [name for name in vars(cls) if not name.startswith("_")]


def _mentions(text: str, name: str) -> bool:
    return f"`{name}`" in text or f"`{name}(" in text


def test_api_page_names_every_public_name() -> None:
    from superintendent import acquisition_functions
    from superintendent.core import ProjectQueue, Superintendent

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    names = _public(Superintendent) + _public(ProjectQueue) + list(acquisition_functions.__all__) + ["queue"]
    parameters = [p for p in inspect.signature(Superintendent.__init__).parameters if p != "self"]
    missing = [n for n in names + parameters if not _mentions(text, n)]
    assert not missing, f"docs/api.md does not mention: {missing}"


def test_api_page_shows_the_real_signature() -> None:
    from superintendent.core import Superintendent

    shown = next(b.code for b in blocks(DOCS / "api.md") if b.lang == "text" and b.code.startswith("Superintendent("))
    parameters = []
    for p in inspect.signature(Superintendent.__init__).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and not any(x.startswith("*") for x in parameters):
            parameters.append("*")
        parameters.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}".replace("'", '"'))
    real = f"Superintendent({', '.join(parameters)})"
    assert " ".join(shown.split()) == real, f"docs/api.md shows\n{shown}\nbut the signature is\n{real}"


@pytest.mark.parametrize("lang", ["json"])  # (the docs' one toml block went with the cookie key: sessions need none)
def test_data_blocks_parse(lang: str) -> None:
    import json

    parse = json.loads
    found = [b for p in RUN_FILES for b in blocks(p) if b.lang == lang]
    assert found, f"no {lang} blocks: drop this check"
    for b in found:
        try:
            parse(b.code)
        except ValueError as exc:
            raise AssertionError(f"{b.path.name}:{b.line}: not valid {lang}: {exc}") from exc


def test_admin_page_samples_import() -> None:
    from superintendent.importers import prepare_upload

    tasks, item = [b.code for b in blocks(DOCS / "admin.md") if b.lang == "json"]
    read = prepare_upload("tasks.json", tasks.encode(), options=["positive", "negative"])
    assert (read.items, read.external_ids) == (["splendid"], ["17"])
    read = prepare_upload("items.jsonl", " ".join(item.splitlines()).encode(), options=["positive", "negative"])  # one line in a file
    assert (read.items, read.external_ids) == (["dreadful"], ["w2"])


SYNOPSIS = re.compile(r"^superintendent (?P<command>[a-z-]+)")
OPTION = re.compile(r"(?<![\w-])(?P<option>--?[a-z][\w-]*)(?: (?P<choices>[\w-]+(?:\|[\w-]+)+))?")


def test_cli_synopses_match_the_parser() -> None:
    from superintendent.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    synopses = [b for b in blocks(DOCS / "cli.md") if b.lang == "text" and SYNOPSIS.match(b.code)]
    assert synopses
    for b in synopses:
        parser = commands[SYNOPSIS.match(b.code)["command"]]
        shown = {m["option"]: m["choices"] for m in OPTION.finditer(b.code)}
        actions = [a for a in parser._actions if a.option_strings and "--help" not in a.option_strings]
        for action in actions:
            named = [o for o in action.option_strings if o in shown]
            assert named, f"cli.md:{b.line}: the synopsis lacks {action.option_strings[-1]}"
            if action.choices and shown[named[0]]:
                assert shown[named[0]].split("|") == list(action.choices), f"cli.md:{b.line}: {named[0]} takes {'|'.join(action.choices)}"
        known = {o for a in actions for o in a.option_strings}
        assert set(shown) <= known, f"cli.md:{b.line}: no such option: {sorted(set(shown) - known)}"


def test_deployment_page_shows_the_image_command() -> None:
    shown = [b.code for b in blocks(DOCS / "deployment.md") if b.lang == "text"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for command in shown:
        assert f'"{command}"' in dockerfile, f"deployment.md shows `{command}`, which is not the Dockerfile's command"


def test_configuration_page_names_every_setting() -> None:
    from superintendent.config import Settings

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [f"SUPERINTENDENT_{name.upper()}" for name in Settings.model_fields if f"SUPERINTENDENT_{name.upper()}" not in text]
    assert not missing, f"docs/configuration.md does not mention: {missing}"


# --------------------------------------------------------------------------- links

LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _anchors(path: Path) -> set[str]:
    """GitHub-style anchors of a Markdown file's headings."""
    anchors = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if in_fence or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        title = re.sub(r"[^\w\- ]", "", title)
        anchors.add(title.replace(" ", "-"))
    return anchors


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m["target"] for m in LINK.finditer(text)]


@pytest.mark.parametrize("path", RUN_FILES, ids=_name)
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target} (no file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{path.name}: broken links: {broken}"


SOURCE_PATH = re.compile(r"(?<![\w./-])(?P<path>(?:superintendent|tests|pages)/[\w./-]*[\w/])")


@pytest.mark.parametrize("path", RUN_FILES, ids=_name)
def test_source_paths_exist(path: Path) -> None:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    missing = sorted({m["path"] for m in SOURCE_PATH.finditer(text) if not (ROOT / m["path"]).exists()})
    assert not missing, f"{path.name} names files that do not exist: {missing}"


DOTTED = re.compile(r"`(?P<name>superintendent(?:\.[A-Za-z_]\w*)+)")
FILE_NAMES = {"superintendent.db"}  # the SQLite file's name, not a module


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


@pytest.mark.parametrize("path", RUN_FILES, ids=_name)
def test_dotted_names_import(path: Path) -> None:
    names = {m["name"] for m in DOTTED.finditer(path.read_text(encoding="utf-8"))} - FILE_NAMES
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, f"{path.name} names what cannot be imported: {missing}"


def test_index_links_every_page() -> None:
    linked = {t.partition("#")[0] for t in _links(DOCS / "index.md")}
    missing = [p.name for p in DOC_FILES if p.name != "index.md" and p.name not in linked]
    assert not missing, f"docs/index.md does not link: {missing}"


def test_every_command_has_a_section_in_the_cli_page():
    from superintendent.cli import build_parser

    text = (DOCS / "cli.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    missing = [c for c in commands if f"## superintendent {c}" not in text]
    assert missing == [], f"docs/cli.md has no section for: {missing}"
