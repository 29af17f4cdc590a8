"""The transport contract the engine and the service runtime rely on.

Implementations: :mod:`orch_serv.transport.rabbit` (aio-pika) and
:mod:`orch_serv.transport.memory` (embedded). Every publish returns only once the broker has
confirmed it; deliveries are acknowledged manually, and every delivery is settled whatever its
handler does (:mod:`orch_serv.transport.guard`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Topology:
    """Exchange, queue and routing-key names under one namespace (ARCHITECTURE section 5)."""

    namespace: str = "orch_serv"

    @property
    def exchange(self) -> str:
        """The direct exchange every command, reply and status event goes through."""
        return self.namespace

    @property
    def dead_letter_exchange(self) -> str:
        """Where undeliverable and rejected messages go."""
        return f"{self.namespace}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        """The queue that keeps dead letters for operators."""
        return f"{self.namespace}.dead"

    @property
    def control_exchange(self) -> str:
        """Fanout exchange for notices to every service process."""
        return f"{self.namespace}.control"

    @property
    def orchestrator_queue(self) -> str:
        """The queue every orchestrator replica consumes (replies, status events, starts)."""
        return f"{self.namespace}.orchestrator"

    orchestrator_key: str = "orchestrator"
    dead_key: str = "dead"

    def service_queue(self, service: str) -> str:
        """The queue a service's processes consume."""
        return f"{self.namespace}.svc.{service}"

    @staticmethod
    def service_key(service: str) -> str:
        """Routing key of a service's commands."""
        return f"svc.{service}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message in the dead-letter queue, with why it is there."""

    message_id: str
    reason: str
    origin_queue: str
    routing_key: str
    kind: str | None
    body: bytes
    headers: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What the broker says about a queue right now."""

    name: str
    messages: int  #: ready to be delivered (not counting those delivered and not yet acked)
    consumers: int


@dataclass(frozen=True, slots=True)
class ReplayFailure:
    """A dead letter that could not be replayed; it stays in the dead-letter queue."""

    message_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What :meth:`Transport.replay_dead_letters` did, letter by letter."""

    replayed: tuple[str, ...] = ()  #: dead-letter ids published again and removed
    failed: tuple[ReplayFailure, ...] = ()  #: left in the queue, with why
    missing: tuple[str, ...] = ()  #: ids asked for that are not in the dead-letter queue

    @property
    def ok(self) -> bool:
        """True when every letter asked for was replayed."""
        return not self.failed and not self.missing


class Delivery(Protocol):
    """One message handed to a consumer; it must be acked or dead-lettered exactly once."""

    @property
    def body(self) -> bytes:
        """The raw message body."""

    @property
    def headers(self) -> Mapping[str, Any]:
        """AMQP headers."""

    @property
    def redelivered(self) -> bool:
        """True when the broker delivered this message before (to a consumer that left)."""

    @property
    def routing_key(self) -> str:
        """The routing key it was published with."""

    @property
    def message_id(self) -> str | None:
        """The AMQP message id."""

    async def ack(self) -> None:
        """Acknowledge: the message is done with."""

    async def requeue(self) -> None:
        """Give the message back to the queue (for shutdown)."""

    async def reject(self) -> None:
        """Refuse it for good: the broker moves it to the queue's dead-letter exchange (with
        ``x-death``); the last resort when even copying it to the dead-letter queue fails."""

    @property
    def settled(self) -> bool:
        """True once it was acked, requeued, rejected or dead-lettered."""


DeliveryHandler = Callable[[Delivery], Awaitable[None]]


class Consumer(Protocol):
    """A running subscription."""

    async def cancel(self) -> None:
        """Stop receiving new deliveries; unacked ones can still be acked."""

    async def close(self) -> None:
        """Cancel, and give every unacked delivery back to the queue."""


class Transport(Protocol):
    """What orch_serv needs from a message broker."""

    topology: Topology

    async def close(self) -> None:
        """Close channels and the connection; idempotent."""

    async def declare_service(self, service: str) -> str:
        """Declare (idempotently) the queue of ``service``; returns its name."""

    async def declare_orchestrator(self) -> str:
        """Declare (idempotently) the orchestrator queue; returns its name."""

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        kind: str | None = None,
    ) -> None:
        """Publish persistently to the main exchange; returns once confirmed.

        Raises :class:`~orch_serv.exceptions.PublishError` if the broker nacks it or no
        queue is bound to ``routing_key``.
        """

    async def consume(self, queue: str, handler: DeliveryHandler, *, prefetch: int) -> Consumer:
        """Start delivering messages of ``queue`` to ``handler`` (manual acks)."""

    async def dead_letter(self, delivery: Delivery, reason: str, *, queue: str) -> None:
        """Publish a copy to the dead-letter queue with ``reason`` in its headers (confirmed),
        then ack the original: the message is never lost and never blocks the consumer."""

    async def publish_control(self, body: bytes, *, message_id: str) -> None:
        """Broadcast a notice (cancel) to every service process; not persisted."""

    async def consume_control(self, handler: DeliveryHandler) -> Consumer:
        """Receive the notices of the control exchange on a queue of this process's own."""

    async def queue_stats(self, queue: str) -> QueueStats | None:
        """Ready messages and consumers of ``queue`` (declared passively: nothing is created);
        None when the queue does not exist."""

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Look at up to ``limit`` dead letters without removing them."""

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> ReplayResult:
        """Publish dead letters (all, or those ids) again to the queue they came from. Each
        leaves the dead-letter queue only once its copy is confirmed; one that cannot be
        published stays, and is reported in :attr:`ReplayResult.failed` with why, while the
        others are replayed."""

    async def purge_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Drop dead letters (all, or those ids); returns how many (0: none of those ids)."""
