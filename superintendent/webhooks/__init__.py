"""Per-project webhooks: events written to an outbox in the transaction of what they announce, sent by a worker.

* :mod:`~superintendent.webhooks.events`: the event names, their JSON bodies, and the enqueue statement
  (called by the queue's submit and by the learning layer when a run finishes);
* :mod:`~superintendent.webhooks.hooks`: create, list, change, pause, resume and delete hooks; the delivery log;
* :mod:`~superintendent.webhooks.delivery`: the worker (:func:`deliver_due`), the signature, retries and pausing.

docs/webhooks.md describes the bodies, the signature and how a receiver checks it.
"""

from superintendent.webhooks.delivery import Round, add_delivery_job, deliver_due, sign, verify
from superintendent.webhooks.events import EVENTS, Event, Status
from superintendent.webhooks.hooks import (
    CreatedHook, DeliveryView, HookView, check_events, check_url, create_hook, delete_hook, list_hooks, pause_hook, pending_count,
    recent_deliveries, resume_hook, update_hook,
)

__all__ = [
    "EVENTS", "CreatedHook", "DeliveryView", "Event", "HookView", "Round", "Status", "add_delivery_job", "check_events", "check_url",
    "create_hook", "delete_hook", "deliver_due", "list_hooks", "pause_hook", "pending_count", "recent_deliveries", "resume_hook",
    "sign", "update_hook", "verify",
]
