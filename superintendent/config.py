"""Settings, read from the environment (prefix ``SUPERINTENDENT_``) by pydantic-settings.

Nothing here connects to anything: :func:`get_settings` only reads values.
Several parts ask for the settings on every click, so :func:`get_settings`
keeps the object it built for each state of the environment variables it
reads: a change of any ``SUPERINTENDENT_*`` variable (or ``HOME``,
``XDG_DATA_HOME``) is seen at the next call, with no cache to clear.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


ENV_PREFIX = "SUPERINTENDENT_"
_OTHER_INPUTS = frozenset({"HOME", "XDG_DATA_HOME"})  # read by default_data_dir


def default_data_dir() -> Path:
    """Where local state lives when nothing is configured (outside any repository)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "superintendent"


class Settings(BaseSettings):
    """Every setting of superintendent; each can be set as ``SUPERINTENDENT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)  # frozen: one object is shared

    data_dir: Path = Field(default_factory=default_data_dir, description="Folder for the SQLite file, uploads and the generated cookie key.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir.")
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0, description="How long a SQLite writer waits for the lock.")
    default_lease_seconds: int = Field(default=300, gt=0, description="Lease length of new projects.")
    retrain_lock_seconds: int = Field(default=3600, gt=0, description="A retrain lock row older than this is taken over (SQLite; PostgreSQL uses an advisory lock).")
    predict_batch_size: int = Field(default=10_000, gt=0, description="Unlabelled items read and predicted per batch during a retrain.")
    run_scheduler: bool = Field(default=True, description="Run the retrain scheduler inside each web-app process; set false when an external `superintendent orchestrate` runs.")
    scheduler_tick_seconds: float = Field(default=5.0, gt=0, description="How often the in-app scheduler checks which projects are due for a retrain.")
    cookie_key: str | None = Field(default=None, description="Secret that signs login cookies (32+ characters); default: generated once into data_dir/cookie_key.")
    cookie_name: str = Field(default="superintendent_auth", description="Name of the login cookie.")
    cookie_expiry_days: float = Field(default=7.0, ge=0, description="How long 'remember me' lasts.")
    max_upload_mb: int = Field(default=200, gt=0, description="Largest upload accepted by the Admin page and `superintendent import`.")

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'superintendent.db'}"


def _environment() -> tuple[tuple[str, str], ...]:
    """The environment variables Settings reads (names are case-insensitive to pydantic-settings)."""
    env, n = os.environ, len(ENV_PREFIX)
    # Names first, values only of the few that match: decoding every value would take most of the time saved.
    return tuple(sorted((k, env[k]) for k in env if k[:n].upper() == ENV_PREFIX or k in _OTHER_INPUTS))


@functools.lru_cache(maxsize=16)
def _settings_for(environment: tuple[tuple[str, str], ...]) -> Settings:  # noqa: ARG001 - the cache key
    return Settings()


def get_settings() -> Settings:
    """The Settings of the current environment: built once per distinct set of values, then shared (frozen)."""
    return _settings_for(_environment())
