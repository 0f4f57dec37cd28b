"""Settings, read from the environment (prefix ``SUPERINTENDENT_``) by pydantic-settings.

Nothing here connects to anything: :func:`get_settings` only reads values.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where local state lives when nothing is configured (outside any repository)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "superintendent"


class Settings(BaseSettings):
    """Every setting of superintendent; each can be set as ``SUPERINTENDENT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SUPERINTENDENT_", extra="ignore")

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


def get_settings() -> Settings:
    """A fresh Settings from the current environment."""
    return Settings()
