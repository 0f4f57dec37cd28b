"""Storage: tables, engines, transactions and schema migrations."""

from superintendent.store.db import DatabaseError, check_connection, init_db, is_sqlite, make_engine, session_scope
from superintendent.store.models import Annotation, AnnotationRevision, Item, LabelMode, ModelRun, Project, Role, RunStatus, Skip, User, utcnow

__all__ = [
    "Annotation", "AnnotationRevision", "DatabaseError", "Item", "LabelMode", "ModelRun", "Project", "Role", "RunStatus", "Skip", "User",
    "check_connection", "init_db", "is_sqlite", "make_engine", "session_scope", "utcnow",
]
