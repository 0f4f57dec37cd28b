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

from pydantic import Field, NonNegativeFloat, model_validator
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

    data_dir: Path = Field(default_factory=default_data_dir, description="Folder for the SQLite file and uploads.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir.")
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0, description="How long a SQLite writer waits for the lock.")
    default_lease_seconds: int = Field(default=300, gt=0, description="Lease length of new projects.")
    retrain_lock_stale_seconds: float = Field(default=60.0, gt=0, description="SQLite: a retrain lock whose holder has not renewed it "
                                              "for this long is taken over, whatever host it was on (PostgreSQL uses an advisory lock).")
    retrain_lock_heartbeat_seconds: float = Field(default=10.0, gt=0, description="SQLite: how often a running retrain renews its lock; "
                                                  "must be less than retrain_lock_stale_seconds.")
    predict_batch_size: int = Field(default=10_000, gt=0, description="Unlabelled items read and predicted per batch during a retrain.")
    rank_write_limit: int = Field(default=5_000, gt=0, description="A retrain writes the new order (and the model's guesses) of at "
                                  "most this many items: the ones labellers reach first. The others keep their earlier order, "
                                  "behind them, so the write costs the same at any project size.")
    model_threads: int = Field(default=1, gt=0, description="Threads (BLAS, OpenMP) a retrain's model may use. With more than the "
                               "cores left over by the web app and the database, a fit took 11-29 s instead of 0.14-0.3 s on a "
                               "busy 2-core machine and starved the labellers' requests; raise it on a machine with cores to spare.")
    run_scheduler: bool = Field(default=True, description="Run the retrain scheduler inside each web-app process; set false when an external `superintendent orchestrate` runs.")
    scheduler_tick_seconds: float = Field(default=5.0, gt=0, description="How often the in-app scheduler checks which projects are due for a retrain.")
    cookie_name: str = Field(default="superintendent_auth", description="Name of the sign-in cookie (HttpOnly; it holds a random session id).")
    cookie_expiry_days: float = Field(default=7.0, gt=0, description="How long a sign-in lasts at most, however active (its server-side session and its cookie); docs/configuration.md, 'Sessions'.")
    session_idle_minutes: float = Field(default=720.0, gt=0, description="A sign-in not used for this long ends (default 12 hours).")
    cookie_secure: bool = Field(default=False, description="Mark the sign-in cookie Secure (sent over HTTPS only): turn on when the app is served over HTTPS, e.g. behind a TLS proxy.")
    max_upload_mb: int = Field(default=200, gt=0, description="Largest upload accepted by the Admin page and `superintendent import`.")
    max_upload_rows: int = Field(default=2_000_000, gt=0, description="Most rows (items) one upload may hold.")
    max_upload_columns: int = Field(default=10_000, gt=0, description="Most columns a table upload may have; counted from the header "
                                    "line (CSV) or the metadata (Parquet) before the table is read.")
    max_upload_cells: int = Field(default=10_000_000, gt=0, description="Most cells (rows x columns) a table upload may have: each "
                                  "becomes a Python value while the items are built (up to about 130 bytes each), so this "
                                  "bounds what a small, well-compressed file can cost.")
    max_field_chars: int = Field(default=100_000, gt=0, description="Longest value of a table cell or text item, in characters; a "
                                 "CSV field over it is found by scanning the bytes before the table is read.")
    max_uncompressed_mb: int = Field(default=256, gt=0, description="Most data a compressed table or array upload (Parquet, .npz) "
                                     "may unpack to in memory, judged from its metadata and headers before it is read; ZIPs of "
                                     "images are bounded separately (1 GB, written to disk one image at a time).")
    max_label_chars: int = Field(default=1_000, ge=100, description="Longest text label (and label option) in characters; "
                                 "labels up to 100 characters are always allowed.")
    max_label_json_chars: int = Field(default=100_000, ge=1_000, description="Longest label of any kind (a multi-label list, a structured "
                                      "label) as stored JSON text, in characters.")
    max_options: int = Field(default=10_000, ge=1, description="Most label options a project may have.")
    webhook_retry_seconds: tuple[NonNegativeFloat, ...] = Field(default=(10, 30, 120, 600, 3600), description="Webhooks: the waits before each "
                                                     "retry of a failed delivery (+-20 % jitter); after the last, the delivery is given up.")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="Webhooks: how long one POST may take.")
    webhook_pause_after: int = Field(default=5, ge=1, description="Webhooks: a hook is paused after this many deliveries in a row were given up.")
    webhook_tick_seconds: float = Field(default=5.0, gt=0, description="Webhooks: how often the worker looks for deliveries that are due.")
    webhook_batch_size: int = Field(default=50, ge=1, description="Webhooks: most deliveries one round of the worker sends.")

    @model_validator(mode="after")
    def _heartbeat_within_stale(self) -> Settings:
        if self.retrain_lock_heartbeat_seconds >= self.retrain_lock_stale_seconds:
            raise ValueError(f"retrain_lock_heartbeat_seconds ({self.retrain_lock_heartbeat_seconds}) must be less than "
                             f"retrain_lock_stale_seconds ({self.retrain_lock_stale_seconds}), or a live retrain's lock is taken over")
        return self

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
