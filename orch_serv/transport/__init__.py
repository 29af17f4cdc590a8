"""Message transports: the protocol the engine uses, and RabbitMQ."""

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
from orch_serv.transport.rabbit import RabbitTransport

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
