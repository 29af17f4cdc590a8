"""A run's history as the Oslo status-api's items, and the okdata CLI's status row.

A trace IS a run (``trace_id`` = run id) and its events are the run's events:

* an event the Oslo surface recorded (a status event whose ``message_id`` is
  ``oslo:<trace_event_id>``) is the item that was posted, as it was stored;
* any other event of a run (a flow run's engine events, ``ctx.status`` events) is mapped:
  ``trace_event_id`` a UUID derived from (run id, seq), stable across reads; ``domain`` the
  run's kind (``flow`` / ``block``) and ``domain_id`` ``<flow>/<version>``; ``start_time`` =
  ``end_time`` = the event's time; ``trace_status`` STARTED for ``run_created``, FINISHED for
  the event that ends the run (``run_succeeded``, ``run_failed``, ...), CONTINUE otherwise;
  ``trace_event_status`` the event's OK/FAILED, and FAILED for a finish that is not a
  success; ``component`` the service (``orchestrator`` for the engine's own events);
  ``operation`` the status name of a status event, else the event kind; ``status_body`` the
  lineage (or any body); ``duration`` the handler's ms; ``errors`` the event's error as
  ``[{"message": {"nb": ..., "en": ...}, "type": ...}]``; ``meta`` what else the event
  says (kind, seq, step, attempt, message id, reason).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from orch_serv.constants import EventKind, EventStatus, RunState
from orch_serv.orchestrator.core.events import FINISH_EVENT
from orch_serv.store.base import Event, RunRecord

#: The ``message_id`` prefix of the events the Oslo surface records.
OSLO_EVENT: Final = "oslo:"
STARTED, CONTINUE, FINISHED = "STARTED", "CONTINUE", "FINISHED"
OK, FAILED = EventStatus.OK.value, EventStatus.FAILED.value
#: The namespace of the UUIDs given to events the surface did not record.
_EVENT_NAMESPACE: Final = uuid.UUID("6f0f3f5e-8e5c-4d1e-9a57-0b7c8e1d2a41")
_FINISHES: Final = frozenset(FINISH_EVENT.values())


def iso(ts: float) -> str:
    """A Unix time as ISO 8601 in UTC, to the microsecond (the okdata client's format)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def oslo_message_id(trace_event_id: str) -> str:
    """The ``message_id`` an event recorded by the surface is stored with."""
    return f"{OSLO_EVENT}{trace_event_id}"


def is_oslo(event: Event) -> bool:
    """True for an event the Oslo surface recorded (its body is the item)."""
    return (
        event.kind is EventKind.STATUS
        and (event.message_id or "").startswith(OSLO_EVENT)
        and isinstance(event.body, dict)
    )


def item_of(record: RunRecord, event: Event) -> dict[str, Any]:
    """The Oslo item of one event of ``record``."""
    if is_oslo(event):
        return {"trace_id": record.run_id, **event.body}
    return _mapped(record, event)


def _mapped(record: RunRecord, event: Event) -> dict[str, Any]:
    when = iso(event.time)
    if event.kind is EventKind.RUN_CREATED:
        trace_status = STARTED
    elif event.kind in _FINISHES:
        trace_status = FINISHED
    else:
        trace_status = CONTINUE
    failed = event.status is EventStatus.FAILED or (
        event.kind in _FINISHES and event.kind is not EventKind.RUN_SUCCEEDED
    )
    item: dict[str, Any] = {
        "trace_id": record.run_id,
        "trace_event_id": str(uuid.uuid5(_EVENT_NAMESPACE, f"{record.run_id}:{event.seq}")),
        "domain": record.kind,
        "domain_id": f"{record.flow}/{record.version}" if record.version else record.flow,
        "start_time": when,
        "end_time": when,
        "trace_status": trace_status,
        "trace_event_status": FAILED if failed else OK,
        "component": event.component or "orchestrator",
        "operation": event.name
        if event.kind is EventKind.STATUS and event.name
        else event.kind.value,
    }
    if event.body is not None:
        item["status_body"] = event.body
    meta = {
        "event_kind": event.kind.value,
        "seq": event.seq,
        "step": event.step,
        "step_name": event.step_name,
        "attempt": event.attempt,
        "message_id": event.message_id,
        "reason": event.reason,
        "message": event.message,
    }
    item["meta"] = {k: v for k, v in meta.items() if v is not None}
    if event.duration_ms is not None:
        item["duration"] = event.duration_ms
    if event.error is not None:
        text = event.error.message
        item["errors"] = [{"message": {"nb": text, "en": text}, "type": event.error.type}]
    return item


def items(record: RunRecord, events: list[Event]) -> list[dict[str, Any]]:
    """Every event of the run as an item, ordered by ``start_time`` as the seed's table
    was (its sort key), events with the same ``start_time`` in the order recorded."""
    found = [item_of(record, e) for e in events]
    return sorted(found, key=lambda i: str(i.get("start_time", "")))


def error_texts(item: dict[str, Any]) -> list[str]:
    """The ``errors[].message.en`` of an item (malformed entries skipped, as the CLI does)."""
    errors = item.get("errors")
    if not isinstance(errors, list):
        return []
    texts = []
    for error in errors:
        message = error.get("message") if isinstance(error, dict) else None
        text = message.get("en") if isinstance(message, dict) else None
        if isinstance(text, str):
            texts.append(text)
    return texts


def summary(record: RunRecord, recorded: list[dict[str, Any]]) -> dict[str, Any]:
    """The okdata CLI's status row (seed-behaviours 4.6), computed by the server from the
    run and its items in the order they were recorded: ``latest`` is the first FINISHED
    item, else the last one; ``done`` is the run's being finished (which, for a trace, the
    first FINISHED event decides: a finished run never changes again, so later events do not
    change the answer either: the seed client's first-FINISHED rule, kept); the event
    status of a finished run is OK for SUCCEEDED and FAILED otherwise, that of an active one
    the latest item's; ``errors`` the ``en`` texts of every item's errors. The legacy names
    (``id``, ``run_status``, ``status``) repeat the current ones; ``state`` is the run's."""
    finished = [i for i in recorded if i.get("trace_status") == FINISHED]
    latest = finished[0] if finished else (recorded[-1] if recorded else {})
    done = record.done
    if done:
        trace_status = FINISHED
        event_status = OK if record.state is RunState.SUCCEEDED else FAILED
    else:
        trace_status = str(latest.get("trace_status") or STARTED)
        if trace_status == FINISHED:  # recorded on a run that is not over (cannot happen)
            trace_status = CONTINUE
        event_status = str(latest.get("trace_event_status") or OK)
    errors = [text for item in recorded for text in error_texts(item)]
    return {
        "done": done,
        "trace_id": record.run_id,
        "trace_status": trace_status,
        "trace_event_status": event_status,
        "errors": errors,
        "id": record.run_id,
        "run_status": trace_status,
        "status": event_status,
        "state": record.state.value,
    }


__all__ = [
    "OSLO_EVENT",
    "error_texts",
    "is_oslo",
    "iso",
    "item_of",
    "items",
    "oslo_message_id",
    "summary",
]
