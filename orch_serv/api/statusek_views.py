"""How the Statusek surface shows events: Statusek's PascalCase JSON (``Status``,
``EventMessage``, ``EventCreationDt``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orch_serv.statusmodel.model import StatusModel, StatusType
from orch_serv.store.base import Event

#: Status types as Statusek spelled them.
TYPE_NAMES = {
    StatusType.MANDATORY: "MANDATORY",
    StatusType.OPTIONAL: "OPTIONAL",
    StatusType.STOP: "STOP-STATUS",
}


def timestamp(seconds: float) -> str:
    """RFC 3339 with microseconds, as Go wrote ``time.Time`` (in UTC)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


def event_json(event: Event, model: StatusModel | None) -> dict[str, Any]:
    """One status event as ``event/getEvents`` lists it. The status rows of Statusek's
    database have no counterpart: ``ID``/``StatusID`` is the status's 1-based position in its
    model, ``ObjectID`` a number derived from the model's name, ``CreatedAt``/``UpdatedAt``
    the event's time."""
    name = event.name or ""
    status = model.status(name) if model is not None else None
    at = timestamp(event.time)
    ident = model.status_id(name) if model is not None else 0
    return {
        "Status": {
            "ID": ident,
            "StatusID": ident,
            "CreatedAt": at,
            "UpdatedAt": at,
            "DeletedAt": None,
            "ObjectID": model.object_id if model is not None else 0,
            "StatusName": name,
            "StatusDesc": status.description if status is not None else "",
            "StatusType": TYPE_NAMES[status.type] if status is not None else "",
        },
        "EventMessage": event.message or "",
        "EventCreationDt": at,
    }


def global_json(name: str, at: float) -> dict[str, Any]:
    """One global event (``event/getGlobalEvents``)."""
    return {"EventName": name, "EventCreationDt": timestamp(at)}


__all__ = ["TYPE_NAMES", "event_json", "global_json", "timestamp"]
