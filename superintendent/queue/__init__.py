"""The labelling queue: the one place with concurrency logic and queue SQL.

Every statement that reads or changes queue state (items, leases,
annotations, skips, priorities, reviews) lives in this package, one job per
module:

* :mod:`~superintendent.queue.claim`: claim, submit, skip, undo, leases, and
  :func:`act`, the one entry point for a labeller's action;
* :mod:`~superintendent.queue.items`: adding items, payloads, batches, counts;
* :mod:`~superintendent.queue.reads`: progress, labelled data, annotation log;
* :mod:`~superintendent.queue.priorities`: priority and hint rewrites;
* :mod:`~superintendent.queue.projects`: project create / get / list / update / archive / delete;
* :mod:`~superintendent.queue.members`: project members, who may work where, each user's last project;
* :mod:`~superintendent.queue.history` and :mod:`~superintendent.queue.review`:
  every change of a label, reviewers' corrections, the review list;
* :mod:`~superintendent.queue.bulk`: annotations stored in bulk (imports).

Functions take a SQLModel ``Session`` and only flush: the caller owns the
transaction (:func:`superintendent.store.session_scope`), so "submit and claim
next" is one atomic transaction (its round trips are counted in docs/queue.md).

The claim path
--------------
Queue state sits on the item row: ``priority``, ``done`` (it has all the
annotations it needs), ``leased_by`` / ``lease_expires_at``. One statement
claims::

    UPDATE sp_item SET leased_by = :user, lease_expires_at = :until
    WHERE id = (SELECT id FROM sp_item
                WHERE project_id = :p AND NOT done AND <lease free or expired>
                  AND <not annotated by :user> AND <not skipped by :user>
                ORDER BY priority, id LIMIT 1
                FOR UPDATE SKIP LOCKED)          -- PostgreSQL only
      AND <lease free or expired> AND NOT done
    RETURNING id, ...

The sub-select walks the partial index ``ix_item_queue (project_id,
priority, id) WHERE NOT done`` in order and stops at the first free row: no
scan of the queue, no count. On PostgreSQL, ``SKIP LOCKED`` lets concurrent
claimers pass over each other's rows instead of waiting or taking the same
one; the repeated "still free" test in the outer ``WHERE`` re-checks the row
after the lock. On SQLite, writing transactions start with ``BEGIN
IMMEDIATE`` (see :mod:`superintendent.store.db`), so claims are serialised.

Semantics
---------
* An item is served until it has ``annotations_per_item`` annotations from
  as many different users; never to two users at the same time; never again
  to a user who annotated or skipped it.
* A lease expires after the project's ``lease_seconds``; the item is then
  free again (no sweeper needed; :func:`release_expired_leases` tidies up).
* A submit is kept even when its lease expired or another user now holds
  the item: a label is never thrown away. Submitting twice changes the label.
* Undo deletes the user's most recent annotation in the project and hands
  that item back to them.
* :func:`reprioritise` rewrites priorities in short chunked transactions,
  so labellers are never blocked for long, and touches nothing else.
"""


from __future__ import annotations

from superintendent.queue.claim import Action, Outcome, act, annotation_exists, last_annotation_id, Task, current_task, explain_claim, claim_next, submit, submit_and_claim_next, skip, release, release_expired_leases, undo
from superintendent.queue.items import AddResult, add_items, unlabelled_batches, count_labelled, progress_counts, item_data, items_data, refresh_statistics
from superintendent.queue.reads import Progress, LabelledData, progress, options_in_use, labelled_data, all_labels, AnnotationRow, annotation_log
from superintendent.queue.priorities import reprioritise, hints_between, labels_since, lowest_priority, set_hints
from superintendent.queue.projects import create_project, delete_project, get_or_create_project, get_project, list_projects, reload_project, set_archived, update_project
from superintendent.queue.members import add_members, check_may_work_in, last_project_id, may_work_in, member_ids, remember_last_project, remove_members, visible_projects
from superintendent.queue.history import RevisionKind, NotAllowedError, recent_labels, change_own_label, Revision
from superintendent.queue.review import set_review, clear_review, LabelGiven, ReviewRow, ReviewPage, ItemHistory, labellers, review_items, item_history, FinalLabel, final_labels
from superintendent.queue.transfer import ItemRecord, count_items, external_item_ids, find_user_id, iter_snapshot, project_snapshot, user_emails
from superintendent.queue.bulk import ImportedLabel, import_annotations
from superintendent.labels import consensus, content_id, final_label
from superintendent.store.db import session_scope
from superintendent.store.models import Annotation, AnnotationRevision, Item, Project, Role, Skip, User, utcnow
from superintendent.validation import ConflictError, NotFoundError, SuperintendentError, ValidationError

__all__ = [  # ItemRecord .. user_emails: reads for exports and imports (transfer.py); the storage names and errors are re-exported as the single module always did
    'Annotation', 'AnnotationRevision', 'Item', 'Project', 'Role', 'Skip', 'User', 'session_scope', 'utcnow',
    'ConflictError', 'NotFoundError', 'SuperintendentError', 'ValidationError',
    'ItemRecord', 'count_items', 'external_item_ids', 'find_user_id', 'iter_snapshot', 'project_snapshot', 'user_emails', 'items_data',
    'Action', 'Outcome', 'act', 'annotation_exists', 'last_annotation_id', 'AddResult', 'AnnotationRow', 'FinalLabel', 'ImportedLabel', 'ItemHistory', 'LabelGiven', 'LabelledData', 'NotAllowedError', 'Progress', 'ReviewPage', 'ReviewRow', 'Revision', 'RevisionKind', 'Task', 'add_items', 'all_labels', 'annotation_log', 'change_own_label', 'claim_next', 'clear_review', 'consensus', 'content_id', 'count_labelled', 'create_project', 'current_task', 'explain_claim', 'final_label', 'final_labels', 'get_project', 'hints_between', 'labels_since', 'lowest_priority', 'import_annotations', 'item_data', 'item_history', 'labelled_data', 'labellers', 'list_projects', 'options_in_use', 'progress', 'progress_counts', 'recent_labels', 'refresh_statistics', 'release', 'release_expired_leases', 'reprioritise', 'review_items', 'set_hints', 'set_review', 'skip', 'submit', 'submit_and_claim_next', 'undo', 'unlabelled_batches', 'update_project',
    'add_members', 'check_may_work_in', 'delete_project', 'get_or_create_project', 'reload_project', 'last_project_id', 'may_work_in', 'member_ids', 'remember_last_project', 'remove_members', 'set_archived', 'visible_projects']
