"""Why a command was not started in time: what the broker says about its service's queue,
in words an operator can act on (recorded with a ``DispatchTimeout``)."""

from __future__ import annotations

from orch_serv.exceptions import TransportError
from orch_serv.transport.base import Transport


async def dispatch_diagnosis(transport: Transport, service: str) -> str | None:
    """A sentence about the queue of ``service`` (None if the broker cannot be asked)."""
    queue = transport.topology.service_queue(service)
    try:
        stats = await transport.queue_stats(queue)
    except TransportError:
        return None
    if stats is None:
        return f"queue {queue!r} does not exist: no service {service!r} has ever run here"
    if stats.consumers == 0:
        return (
            f"no consumer on queue {queue!r} ({stats.messages} message(s) waiting): "
            f"is the service {service!r} running?"
        )
    return (
        f"queue {queue!r} has {stats.consumers} consumer(s) and {stats.messages} message(s) "
        "waiting: the service is busy, or its start notice did not reach this namespace's "
        "orchestrators (see `orch-serv dlq list`)"
    )


__all__ = ["dispatch_diagnosis"]
