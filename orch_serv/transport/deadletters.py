"""The dead-letter format shared by every transport: the headers a dead letter carries, how
one is read back, which headers a replay keeps and where a replay goes.

Headers copied from an incoming message are made wire-safe first
(:func:`~orch_serv.transport.wiresafe.wire_safe_headers`): a dead letter can always be
published, whatever its original carried."""

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
from orch_serv.transport.base import DeadLetter, Topology
from orch_serv.transport.wiresafe import wire_safe_headers


def dead_letter_headers(delivery: Any, reason: str, queue: str) -> dict[str, Any]:
    """The delivery's headers (wire-safe) plus why, from where, and a dead-letter id."""
    headers = dict(delivery.headers)
    headers[HEADER_REASON] = reason[:1024]
    headers[HEADER_ORIGIN_QUEUE] = queue
    headers[HEADER_ORIGIN_ROUTING_KEY] = delivery.routing_key
    headers[HEADER_DEAD_ID] = uuid.uuid4().hex
    return wire_safe_headers(headers)


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


#: Header-name prefixes a replay drops: ours (but the protocol and kind), and the broker's
#: records of earlier deliveries and dead-letterings (a replay starts afresh).
_NOT_REPLAYED = ("x-orch-serv-", "x-death", "x-first-death", "x-last-death", "x-delivery-count")


def replay_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers a replayed message keeps: the original ones (wire-safe), not the
    dead-letter ones, nor the broker's records of earlier deliveries (``x-death``,
    ``x-delivery-count``)."""
    return wire_safe_headers(
        {
            k: v
            for k, v in headers.items()
            if not str(k).startswith(_NOT_REPLAYED) or k in (HEADER_PROTOCOL, HEADER_KIND)
        }
    )


def replay_route(letter: DeadLetter, topology: Topology) -> tuple[str, str]:
    """(exchange, routing key) that take a dead letter back to the queue it came from.

    When the letter records its queue, the default exchange ("") with the queue's name: that
    reaches the queue whatever routing key the message first had, including a message that
    was published straight to the queue through the default exchange (its routing key is the
    queue's name, which routes nowhere on the main exchange). Otherwise, the main exchange
    with the original routing key."""
    if letter.origin_queue and letter.origin_queue != topology.dead_letter_queue:
        return "", letter.origin_queue
    return topology.exchange, letter.routing_key
