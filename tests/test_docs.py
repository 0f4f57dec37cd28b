"""The documentation is tested: its examples run, its links resolve, its API and settings lists are complete.

* Every fenced ``python`` block of ``docs/*.md`` runs: a file's blocks in
  order, in one fresh namespace per file, in a temporary working directory
  with ``SUPERINTENDENT_DATA_DIR`` pointed there. A block is excluded only
  by ``<!-- not-run: reason -->`` on the line right before its fence.
* In fenced ``bash`` blocks, every line starting with ``superintendent ``
  runs (a file's lines in order, against one temporary SQLite database set
  as ``SUPERINTENDENT_DATABASE_URL``); so do the lines that create the files
  those commands read (starting with ``printf `` or ``python -c ``). Every
  one must exit with 0. ``create-user`` gets its password on stdin;
  ``orchestrate`` lines must stop by themselves (``--max-runs``).
* Every public name of ``Superintendent``, ``ProjectQueue`` and
  ``superintendent.acquisition_functions.__all__``, and every constructor
  argument, appears in docs/api.md; every setting appears in
  docs/configuration.md as ``SUPERINTENDENT_<NAME>``.
* Every relative link of docs/*.md points to an existing file (and, for
  ``file.md#anchor``, to an existing heading).
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOC_FILES = sorted(DOCS.glob("*.md"))
NOT_RUN = re.compile(r"^<!--\s*not-run:(?P<reason>.*?)-->\s*$")
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
        marker = NOT_RUN.match(lines[i - 1].strip()) if i > 0 else None
        found.append(Block(path, m["lang"].lower(), start + 1, "\n".join(lines[start:end]),
                           marker["reason"].strip() if marker else None))
        i = end + 1
    return found


def _files_with(lang: str) -> list[Path]:
    return [p for p in DOC_FILES if any(b.lang == lang for b in blocks(p))]


# --------------------------------------------------------------------------- python blocks


def test_docs_exist() -> None:
    names = {p.name for p in DOC_FILES}
    expected = {"index.md", "quickstart.md", "concepts.md", "labelling.md", "admin.md", "api.md", "examples.md",
                "configuration.md", "deployment.md", "cli.md"}
    assert expected <= names, f"missing: {sorted(expected - names)}"


def test_few_blocks_are_excluded_and_each_says_why() -> None:
    excluded = [b for p in DOC_FILES for b in blocks(p) if b.not_run is not None]
    assert len(excluded) <= MAX_NOT_RUN, [f"{b.path.name}:{b.line}" for b in excluded]
    for b in excluded:
        assert b.not_run, f"{b.path.name}:{b.line}: <!-- not-run: ... --> needs a reason"
    for p in DOC_FILES:  # a marker must sit right before a fence, or it excludes nothing
        lines = p.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if NOT_RUN.match(line.strip()):
                assert n + 1 < len(lines) and FENCE.match(lines[n + 1]), f"{p.name}:{n + 1}: not-run marker not right before a fence"


@pytest.fixture
def doc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SUPERINTENDENT_DATABASE_URL", raising=False)
    monkeypatch.delenv("SUPERINTENDENT_WORKER_ID", raising=False)
    return tmp_path


@pytest.mark.parametrize("path", _files_with("python"), ids=lambda p: p.name)
def test_python_examples_run(path: Path, doc_env: Path) -> None:
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    started = time.perf_counter()
    for block in blocks(path):
        if block.lang != "python" or block.not_run is not None:
            continue
        code = compile(block.code, f"{path.name}:{block.line}", "exec")
        try:
            exec(code, namespace)  # noqa: S102 - the docs' own examples
        except Exception as exc:  # noqa: BLE001 - say which block failed
            raise AssertionError(f"the python block at {path.name}:{block.line} failed: {type(exc).__name__}: {exc}") from exc
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
    return [p for p in DOC_FILES if any(line.startswith(RUN_PREFIXES) for _, line in _command_lines(p))]


@pytest.mark.parametrize("path", _files_with_commands(), ids=lambda p: p.name)
def test_command_examples_run(path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERINTENDENT_")}
    env.update(SUPERINTENDENT_DATABASE_URL=f"sqlite:///{tmp_path / 'docs.db'}", SUPERINTENDENT_DATA_DIR=str(tmp_path / "data"))
    bindir = str(Path(sys.executable).parent)  # the `superintendent` and `python` of this interpreter first
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    for line_no, command in _command_lines(path):
        words = command.split()
        if words[:2] == ["superintendent", "orchestrate"]:
            assert "--max-runs" in words, f"{path.name}:{line_no}: an orchestrate example must stop by itself (--max-runs)"
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


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
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
