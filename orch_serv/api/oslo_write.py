"""Turning a posted body into what the store keeps: the trace id, the item, the status event
that carries it, the file paths to index, and the error a FAILED finish gives the run."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from orch_serv.api.oslo_items import FAILED, OK, STARTED, error_texts, oslo_message_id
from orch_serv.api.oslo_models import ITEM_FIELDS, TraceCreate, TraceEventIn
from orch_serv.constants import EventKind, EventStatus
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.messages.limits import MAX_DURATION_MS
from orch_serv.store.base import Event
from orch_serv.store.lineage import lineage_paths

#: The seed's longest trace id.
MAX_TRACE_ID: Final = 80
#: What of a domain id may appear in a trace id (URL-safe); anything else becomes '-'.
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._~-]")
_UUID_CHARS: Final = 36


def new_trace_id(domain_id: str) -> str:
    """``<first part of domain_id>-<uuid4>``, at most 80 characters as in the seed, but cut
    in the prefix, never in the uuid (the seed cut the whole string, which could shorten the
    uuid of a long dataset id). Characters that are not URL-safe become '-'."""
    prefix = _UNSAFE.sub("-", domain_id.split("/")[0])
    return f"{prefix[: MAX_TRACE_ID - _UUID_CHARS - 1]}-{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class Posted:
    """A posted event, ready to store: the item (without ``trace_id``), its event, its
    file paths."""

    item: dict[str, Any]
    event: Event
    paths: list[str]

    @property
    def trace_status(self) -> str:
        """STARTED, CONTINUE or FINISHED."""
        return str(self.item["trace_status"])

    @property
    def failed(self) -> bool:
        """The event's status is FAILED."""
        return bool(self.item["trace_event_status"] == FAILED)

    def answer(self, trace_id: str) -> dict[str, Any]:
        """The stored item as the surface answers it."""
        return {"trace_id": trace_id, **self.item}

    def error(self) -> ErrorInfo:
        """The run's error when this event finishes it FAILED: its errors' texts, else its
        exception, else a generic reason."""
        texts = error_texts(self.item) or _nb_texts(self.item)
        exception = self.item.get("exception")
        message = "; ".join(texts) or (exception.strip() if exception else "")
        return ErrorInfo(
            type="TraceFailed",
            message=message or "the trace finished with trace_event_status FAILED",
            retryable=False,
        )


def _nb_texts(item: dict[str, Any]) -> list[str]:
    errors = item.get("errors") or []
    found = []
    for error in errors:
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, dict) and isinstance(message.get("nb"), str):
            found.append(message["nb"])
    return found


def posted(body: TraceCreate | TraceEventIn, *, now: float | None = None) -> Posted:
    """The item and event of a posted body. A created trace's first event is STARTED / OK
    whatever the body said (as in the seed); every event gets a new ``trace_event_id``."""
    fields = body.model_dump(exclude_none=True)
    if isinstance(body, TraceCreate):
        fields |= {"trace_status": STARTED, "trace_event_status": OK}
    fields["trace_event_id"] = str(uuid.uuid4())
    item = {name: fields[name] for name in ITEM_FIELDS if name in fields}
    duration = item.get("duration")
    event = Event(
        kind=EventKind.STATUS,
        time=time.time() if now is None else now,
        status=EventStatus(item["trace_event_status"]),
        component=item["component"],
        duration_ms=float(duration)
        if isinstance(duration, int | float) and 0 <= duration <= MAX_DURATION_MS
        else None,
        body=item,
        message_id=oslo_message_id(item["trace_event_id"]),
        name=item.get("operation"),
    )
    return Posted(item, event, lineage_paths(item.get("status_body"), item.get("s3_path")))


__all__ = ["MAX_TRACE_ID", "Posted", "new_trace_id", "posted"]
