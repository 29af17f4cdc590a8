"""Message transports: the protocol the engine uses, and RabbitMQ."""

from typing import TYPE_CHECKING, Any

from orch_serv.transport.base import (
    Consumer,
    Delivery,
    DeliveryHandler,
    QueueStats,
    ReplayFailure,
    ReplayResult,
    Topology,
    Transport,
)

if TYPE_CHECKING:
    from orch_serv.transport.rabbit import RabbitTransport


def __getattr__(name: str) -> Any:
    """``RabbitTransport`` is imported when first asked for (it loads aio-pika)."""
    if name == "RabbitTransport":
        from orch_serv.transport.rabbit import RabbitTransport

        return RabbitTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Consumer",
    "Delivery",
    "DeliveryHandler",
    "QueueStats",
    "RabbitTransport",
    "ReplayFailure",
    "ReplayResult",
    "Topology",
    "Transport",
]
