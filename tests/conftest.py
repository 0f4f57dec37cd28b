"""Shared fixtures: one ``db_url`` parametrised over SQLite and the real PostgreSQL server.

PostgreSQL comes from ``SUPERINTENDENT_TEST_POSTGRES_URL`` (e.g.
``postgresql+psycopg2://postgres@127.0.0.1:5432/test``). Without it, or when
the server does not answer, PostgreSQL tests skip with the reason, except
under ``CI=true``, where they fail: CI never passes by skipping them.

Hypothesis runs with one of two profiles: "default" (50 examples per
property test) and "fuzz" (2000). "fuzz" is chosen by
``SUPERINTENDENT_HYPOTHESIS_PROFILE=fuzz`` or, without that variable, by a
``-m`` expression that selects the ``fuzz`` marker (``pytest -m fuzz``);
``--hypothesis-profile NAME`` (hypothesis' own option) wins over both. Under
the fuzz profile the property tests get an hour each instead of the usual
timeout.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import settings

from superintendent.store import init_db, make_engine

POSTGRES_ENV = "SUPERINTENDENT_TEST_POSTGRES_URL"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HYPOTHESIS_PROFILE_ENV = "SUPERINTENDENT_HYPOTHESIS_PROFILE"
DEFAULT_EXAMPLES, FUZZ_EXAMPLES = 50, 2000
FUZZ_TIMEOUT = 3600  # seconds per property test under a longer profile (the usual timeout is pyproject.toml's)

settings.register_profile("default", max_examples=DEFAULT_EXAMPLES, deadline=None)
settings.register_profile("fuzz", max_examples=FUZZ_EXAMPLES, deadline=None)


def selects_fuzz(markexpr: str) -> bool:
    """Whether a ``-m`` expression asks for the fuzz tests: it names ``fuzz`` other than as ``not fuzz``."""
    return re.search(r"(?<!\bnot )\bfuzz\b", " ".join(markexpr.split())) is not None


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module is imported: a test's @settings(...) takes the profile loaded when it is created.
    if config.getoption("hypothesis_profile", None):
        return  # hypothesis' own --hypothesis-profile option: its plugin loaded that profile
    name = os.environ.get(HYPOTHESIS_PROFILE_ENV) or ("fuzz" if selects_fuzz(config.getoption("markexpr") or "") else "default")
    settings.load_profile(name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.default.max_examples > DEFAULT_EXAMPLES:  # a longer profile: the property tests may run long
        for item in items:
            if item.get_closest_marker("fuzz"):
                item.add_marker(pytest.mark.timeout(FUZZ_TIMEOUT), append=False)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run, not skip)")
    pytest.skip(reason)


def postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        _unavailable(f"{POSTGRES_ENV} is not set")
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except sa.exc.OperationalError as exc:
        _unavailable(f"PostgreSQL at {url} does not answer: {str(exc.orig).strip()}")
    return url


def _postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own, dropped afterwards."""
    base = postgres_base_url()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database (no schema yet): a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on a database with the current schema."""
    eng = make_engine(db_url)
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def app_env(db_url, tmp_path, monkeypatch):
    """An app configured on a fresh database (SQLite and PostgreSQL), its data folder in tmp_path, no background scheduler."""
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", db_url)
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPERINTENDENT_RUN_SCHEDULER", "false")
    engine = make_engine(db_url)
    init_db(engine)
    yield engine
    engine.dispose()
