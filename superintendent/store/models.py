"""The tables. One owner: every table of superintendent is declared here.

Times are timezone-aware UTC everywhere (:class:`UTCDateTime`), on SQLite too.
Item payloads and annotation values are JSON text written by
:mod:`superintendent.serialization` (never pickle).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from superintendent.al.acquisition import DEFAULT_ACQUISITION


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """A datetime stored as UTC and always returned timezone-aware.

    SQLite keeps no time zone: values are normalised to UTC on the way in and
    marked UTC on the way out, so comparisons behave alike on both databases.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use a timezone-aware UTC datetime")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _time(nullable: bool = True, **kw: Any) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, **kw))


class Role(str, enum.Enum):
    admin = "admin"
    reviewer = "reviewer"  # labels, and reviews / corrects finished items
    labeller = "labeller"
    system = "system"  # imported labels and API workers; cannot log in


class LabelMode(str, enum.Enum):
    single = "single"
    multi = "multi"
    spans = "spans"  # a list of {start, end, label} on an item's text
    boxes = "boxes"  # a list of {x, y, width, height, label} on an item's image


class RunStatus(str, enum.Enum):
    running = "running"
    succeeded = "succeeded"
    skipped = "skipped"
    failed = "failed"


class User(SQLModel, table=True):
    __tablename__ = "sp_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=sa.Column(sa.String(150), nullable=False, unique=True))
    display_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=320)
    password_hash: str | None = Field(default=None, max_length=200)
    role: str = Field(default=Role.labeller.value, max_length=20)
    active: bool = Field(default=True)
    failed_logins: int = Field(default=0)
    locked_until: dt.datetime | None = _time()
    # The project this user worked in last: the Label page opens on it (None: the first project they may see).
    # Not a foreign key (SQLite cannot add one in place): queue.delete_project clears it.
    last_project_id: int | None = Field(default=None)
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class UserSession(SQLModel, table=True):
    """One sign-in of a user in one browser; the rules are :mod:`superintendent.sessions`'.

    The browser's cookie holds a random token; only its SHA-256 (``token_hash``) is stored, so a copy of this
    table signs nobody in. ``handoff_hash`` is the one-time token the browser trades for that cookie right
    after the sign-in. A session ends by its timeouts (read off ``created_at`` and ``last_seen_at``) or when
    ``ended_at`` is set (``end_reason``: a :class:`superintendent.sessions.EndReason` value).
    """

    __tablename__ = "sp_user_session"
    __table_args__ = (sa.Index("ix_user_session_user", "user_id"), sa.Index("ix_user_session_created", "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="CASCADE"), nullable=False))
    token_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), nullable=True, unique=True))
    handoff_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), nullable=True, unique=True))
    handoff_expires_at: dt.datetime | None = _time()
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_seen_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    ended_at: dt.datetime | None = _time()
    end_reason: str | None = Field(default=None, sa_column=sa.Column(sa.String(30), nullable=True))


class ApiToken(SQLModel, table=True):
    """A personal access token for the HTTP API: it acts as its user, with the user's role and memberships of the moment.

    Only the SHA-256 of the token is stored (``token_hash``); ``prefix`` is its first characters, shown in lists so a
    person can tell tokens apart. A token stops at ``expires_at`` or when ``revoked_at`` is set.
    """

    __tablename__ = "sp_api_token"
    __table_args__ = (sa.Index("ix_api_token_user", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="CASCADE"), nullable=False))
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    prefix: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime | None = _time()
    last_used_at: dt.datetime | None = _time()
    revoked_at: dt.datetime | None = _time()


class Webhook(SQLModel, table=True):
    """A project's webhook: events (a JSON list of names) are POSTed to ``url``, signed with ``secret`` (HMAC-SHA256).

    A hook that keeps failing is paused: ``paused_at`` set and ``paused_reason`` saying why; ``failures`` counts the
    deliveries given up on in a row.
    """

    __tablename__ = "sp_webhook"
    __table_args__ = (sa.Index("ix_webhook_project", "project_id"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_project.id", ondelete="CASCADE"), nullable=False))
    url: str = Field(sa_column=sa.Column(sa.String(2000), nullable=False))
    secret: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    events: str = Field(default="[]", sa_column=sa.Column(sa.Text, nullable=False))
    active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False))
    failures: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    paused_at: dt.datetime | None = _time()
    paused_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_by: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="SET NULL"), nullable=True))
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """The outbox and the delivery log in one: a row per event per hook, written in the transaction of the event.

    A background worker sends rows whose ``status`` is ``pending`` and whose ``next_attempt_at`` has come, retrying
    with backoff; ``status`` ends as ``delivered`` or ``failed`` (given up). ``payload`` is the JSON body.
    """

    __tablename__ = "sp_webhook_delivery"
    __table_args__ = (sa.Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
                      sa.Index("ix_webhook_delivery_hook", "webhook_id", "id"))

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_webhook.id", ondelete="CASCADE"), nullable=False))
    event: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    event_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="pending", sa_column=sa.Column(sa.String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    next_attempt_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_attempt_at: dt.datetime | None = _time()
    response_code: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, nullable=True))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    delivered_at: dt.datetime | None = _time()


class Project(SQLModel, table=True):
    """A project. Its settings are checked, documented and defaulted by
    :class:`superintendent.project_settings.ProjectSettings` (one field per column; a test keeps the defaults alike).
    """

    __tablename__ = "sp_project"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    data_type: str = Field(default="any", max_length=20)
    label_mode: str = Field(default=LabelMode.single.value, max_length=10)
    options: list[Any] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    allow_free_text: bool = Field(default=False)
    model_preset: str | None = Field(default=None, max_length=100)
    model_factory: str | None = Field(default=None, max_length=300)
    acquisition_function: str = Field(default=DEFAULT_ACQUISITION, max_length=50)
    shuffle_prop: float = Field(default=0.1)
    retrain_interval_seconds: float | None = Field(default=None)
    retrain_interval_n_labels: int = Field(default=0)
    annotations_per_item: int = Field(default=1)
    lease_seconds: int = Field(default=300)
    show_hints: bool = Field(default=False)
    # Table rows: the fields labellers see and the fields the model gets (set at import; None: all fields).
    display_columns: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON(none_as_null=True), nullable=True))
    model_columns: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON(none_as_null=True), nullable=True))
    diversity_window: int | None = Field(default=None)  # "*_diverse" ranking: items per round (None: the labels expected before the next retrain)
    guidelines: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))  # Markdown shown on the Label page
    option_descriptions: dict[str, str] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False, server_default="{}"))  # {str(option): help}
    archived: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()))  # hidden from labellers, data kept
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class ProjectMember(SQLModel, table=True):
    """A labeller or reviewer who works in a project (admins work in every project and need no row)."""

    __tablename__ = "sp_project_member"
    __table_args__ = (sa.Index("ix_project_member_user", "user_id", "project_id"),)

    project_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_project.id", ondelete="CASCADE"), primary_key=True))
    user_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="CASCADE"), primary_key=True))
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class Item(SQLModel, table=True):
    """One thing to label. Queue state (priority, lease, done) lives on the row.

    ``done`` is true once the item has ``annotations_per_item`` annotations; the
    claim reads one partial index, ``ix_item_queue``, in priority order.
    """

    __tablename__ = "sp_item"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "external_id", name="uq_item_project_external_id"),
        sa.Index("ix_item_queue", "project_id", "priority", "id", postgresql_where=sa.text("NOT done"), sqlite_where=sa.text("NOT done")),
        sa.Index("ix_item_leased_by", "leased_by", "project_id", postgresql_where=sa.text("leased_by IS NOT NULL"), sqlite_where=sa.text("leased_by IS NOT NULL")),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True))
    project_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_project.id", ondelete="CASCADE"), nullable=False))
    external_id: str = Field(sa_column=sa.Column(sa.String(300), nullable=False))
    data: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    file_path: str | None = Field(default=None, max_length=1000)
    priority: float = Field(default=0.0, sa_column=sa.Column(sa.Float, nullable=False))
    done: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()))
    n_annotations: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    hint: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))  # the latest model's guess (JSON)
    hint_confidence: float | None = Field(default=None)
    hint_top: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))  # the model's top guesses: JSON [[label, probability], ...]
    # A reviewer's correction (JSON); when set it is the item's label for training and export, above the consensus.
    review_value: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    reviewed_by: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="SET NULL"), nullable=True))
    reviewed_at: dt.datetime | None = _time()
    leased_by: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="SET NULL"), nullable=True))
    leased_at: dt.datetime | None = _time()
    lease_expires_at: dt.datetime | None = _time()
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class Annotation(SQLModel, table=True):
    __tablename__ = "sp_annotation"
    __table_args__ = (
        sa.UniqueConstraint("item_id", "user_id", name="uq_annotation_item_user"),
        sa.Index("ix_annotation_project_user_created", "project_id", "user_id", "created_at"),
        sa.Index("ix_annotation_project_created", "project_id", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True))
    project_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_project.id", ondelete="CASCADE"), nullable=False))
    item_id: int = Field(sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("sp_item.id", ondelete="CASCADE"), nullable=False))
    user_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id"), nullable=False))
    value: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    time_taken: float | None = Field(default=None)
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class AnnotationRevision(SQLModel, table=True):
    """History: one row per change of a label after it was first given.

    ``kind`` is ``edit`` (a labeller changed their own label), ``review`` (a
    reviewer set or cleared an item's corrected label) or ``undo`` (a
    labeller took their label back). ``old_value`` / ``new_value`` are JSON
    text (None where there was / is no label). Rows are only ever added.
    """

    __tablename__ = "sp_annotation_revision"
    __table_args__ = (sa.Index("ix_revision_project_item", "project_id", "item_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True))
    project_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_project.id", ondelete="CASCADE"), nullable=False))
    item_id: int = Field(sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("sp_item.id", ondelete="CASCADE"), nullable=False))
    user_id: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="SET NULL"), nullable=True))  # whose label changed (None: the item's reviewed label)
    kind: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    old_value: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    new_value: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    changed_by: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="SET NULL"), nullable=True))
    changed_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class Skip(SQLModel, table=True):
    __tablename__ = "sp_skip"

    item_id: int = Field(sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("sp_item.id", ondelete="CASCADE"), primary_key=True))
    user_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_user.id", ondelete="CASCADE"), primary_key=True))
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class ModelRun(SQLModel, table=True):
    __tablename__ = "sp_model_run"
    __table_args__ = (sa.Index("ix_model_run_project_started", "project_id", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_project.id", ondelete="CASCADE"), nullable=False))
    status: str = Field(default=RunStatus.running.value, max_length=20)
    started_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: dt.datetime | None = _time()
    n_labels: int = Field(default=0)
    n_ranked: int = Field(default=0)
    score_mean: float | None = Field(default=None)
    score_std: float | None = Field(default=None)
    scores: list[float] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    per_class: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    confusion: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    acquisition_function: str = Field(default="", max_length=100)
    phase_seconds: dict[str, float] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    # Figures beyond the score, e.g. how many predictions changed since the previous run (the stopping signal).
    signals: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False, server_default="{}"))
    worker: str = Field(default="", max_length=200)
    message: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class RetrainLock(SQLModel, table=True):
    """One row per project while a retrain runs (SQLite; PostgreSQL uses an advisory lock too)."""

    __tablename__ = "sp_retrain_lock"

    project_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("sp_project.id", ondelete="CASCADE"), primary_key=True))
    holder: str = Field(max_length=200)
    expires_at: dt.datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=False))


class AuditEntry(SQLModel, table=True):
    """One admin action: who did what to which thing, and when. Written by :mod:`superintendent.audit`; never holds a password."""

    __tablename__ = "sp_audit"
    __table_args__ = (sa.Index("ix_audit_created_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: dt.datetime | None = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.String(150), nullable=False))  # a user name, kept as text: the log outlives renames
    action: str = Field(sa_column=sa.Column(sa.String(50), nullable=False))  # an audit.AuditAction value, e.g. "user.role"
    target: str = Field(default="", sa_column=sa.Column(sa.String(300), nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
