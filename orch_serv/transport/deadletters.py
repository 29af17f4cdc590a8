"""The dead-letter format shared by every transport: the headers a dead letter carries, how
one is read back, and which headers a replay keeps."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from orch_serv.constants import (
    HEADER_DEAD_ID,
    HEADER_KIND,
    HEADER_ORIGIN_QUEUE,
    HEADER_ORIGIN_ROUTING_KEY,
    HEADER_PROTOCOL,
    HEADER_REASON,
)
from orch_serv.transport.base import DeadLetter


def dead_letter_headers(delivery: Any, reason: str, queue: str) -> dict[str, Any]:
    """The delivery's headers plus why, from where, and a dead-letter id of its own."""
    headers = dict(delivery.headers)
    headers[HEADER_REASON] = reason[:1024]
    headers[HEADER_ORIGIN_QUEUE] = queue
    headers[HEADER_ORIGIN_ROUTING_KEY] = delivery.routing_key
    headers[HEADER_DEAD_ID] = uuid.uuid4().hex
    return headers


def read_dead_letter(
    headers: Mapping[str, Any],
    *,
    message_id: str | None,
    routing_key: str,
    kind: str | None,
    body: bytes,
) -> DeadLetter:
    """A dead letter as stored; one the broker dead-lettered itself (rejected, expired)
    has its origin in ``x-death`` instead of our headers."""
    deaths = headers.get("x-death")
    first = deaths[0] if isinstance(deaths, list) and deaths else None
    death: Mapping[str, Any] = first if isinstance(first, dict) else {}
    keys = death.get("routing-keys") or [routing_key]
    return DeadLetter(
        message_id=str(headers.get(HEADER_DEAD_ID) or message_id or ""),
        reason=str(headers.get(HEADER_REASON) or death.get("reason") or ""),
        origin_queue=str(headers.get(HEADER_ORIGIN_QUEUE) or death.get("queue") or ""),
        routing_key=str(headers.get(HEADER_ORIGIN_ROUTING_KEY) or keys[0]),
        kind=kind,
        body=body,
        headers=dict(headers),
    )


def replay_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers a replayed message keeps: the original ones, not the dead-letter ones."""
    return {
        k: v
        for k, v in headers.items()
        if not k.startswith("x-orch-serv-") or k in (HEADER_PROTOCOL, HEADER_KIND)
    }
