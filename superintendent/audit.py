"""The audit log of admin actions: who did what, to which thing, and when.

* :func:`record` adds one row in the caller's transaction, so an action and
  its entry commit (or roll back) together.
* :func:`recent` reads the newest entries, for the Admin page.
* Details are JSON and never hold a password or other secret: a detail whose
  name looks like one is refused (the value is never echoed).
"""

from __future__ import annotations

import enum
import json
import re
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent.store.models import AuditEntry
from superintendent.validation import ValidationError

__all__ = ["AuditAction", "AuditEntry", "record", "recent"]

_SECRET_NAME = re.compile(r"pass(word|wd|phrase)|secret|token|hash|cookie|credential", re.IGNORECASE)


class AuditAction(str, enum.Enum):
    project_create = "project.create"
    project_update = "project.update"
    project_archive = "project.archive"
    project_restore = "project.restore"
    project_delete = "project.delete"
    project_members = "project.members"
    user_create = "user.create"
    user_role = "user.role"
    user_active = "user.active"
    user_password_reset = "user.password_reset"
    user_sign_out_everywhere = "user.sign_out_everywhere"
    data_import = "data.import"
    labels_export = "labels.export"
    model_retrain = "model.retrain"
    api_key_create = "api_key.create"  # a personal access token for the HTTP API (details: its name and first characters)
    api_key_revoke = "api_key.revoke"
    webhook_create = "webhook.create"
    webhook_pause = "webhook.pause"
    webhook_resume = "webhook.resume"
    webhook_delete = "webhook.delete"


def _checked_details(details: dict[str, Any]) -> dict[str, Any]:
    secret = sorted(k for k in details if _SECRET_NAME.search(k))
    if secret:
        raise ValidationError(f"audit details may not hold passwords or secrets; drop {', '.join(map(repr, secret))}")
    try:
        return json.loads(json.dumps(details, default=str, allow_nan=False))
    except ValueError as exc:
        raise ValidationError(f"audit details must be JSON (finite numbers, text, lists, dicts); {exc}") from None


def record(session: Session, actor: str, action: AuditAction | str, target: str, **details: Any) -> AuditEntry:
    """Add an entry for ``actor`` doing ``action`` to ``target``; it commits with the caller's transaction."""
    try:
        action = AuditAction(action)
    except ValueError:
        raise ValidationError(f"unknown audit action {action!r}; expected one of {', '.join(a.value for a in AuditAction)}") from None
    entry = AuditEntry(actor=actor, action=action.value, target=str(target), details=_checked_details(details))
    session.add(entry)
    session.flush()
    return entry


def recent(session: Session, limit: int = 200) -> list[AuditEntry]:
    """The newest ``limit`` entries, newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be a positive whole number; got {limit!r}")
    query = sa.select(AuditEntry).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
    return list(session.execute(query).scalars())
