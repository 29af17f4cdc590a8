"""An in-memory broker with the RabbitMQ semantics the engine relies on, for the embedded
mode and the test kit: direct and fanout exchanges, queues that live as long as the process,
manual acks with a prefetch, redelivery (flagged) of unacked messages when their consumer
goes away, dead-lettering with a reason, mandatory publishes that fail when unroutable,
and publisher confirms that are immediate.

Batching is the RabbitMQ transport's own (:mod:`orch_serv.transport.batching`): publishes go
through the same :class:`~orch_serv.transport.batching.PublishBatcher`, and every delivery
through the same :func:`~orch_serv.transport.batch_delivery.deliver` (poison guards, batch
splitting, per-element settlement), so the embedded mode runs the same code under load.

Transports opened on the same ``memory://NAME`` URL share one broker.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Self

from orch_serv.constants import HEADER_DEAD_ID
from orch_serv.exceptions import PublishError, TransportError
from orch_serv.transport.base import (
    DeadLetter,
    DeliveryHandler,
    QueueStats,
    ReplayFailure,
    ReplayResult,
    Topology,
)
from orch_serv.transport.batching import PublishBatcher, deliver
from orch_serv.transport.deadletters import (
    dead_letter_headers,
    read_dead_letter,
    replay_headers,
    replay_route,
)
from orch_serv.transport.guard import settle_notice
from orch_serv.transport.memory_broker import (
    Broker,
    MemoryConsumer,
    MemoryDelivery,
    Message,
    Queue,
    broker_for,
)

__all__ = ["Broker", "MemoryConsumer", "MemoryDelivery", "MemoryTransport", "broker_for"]


class MemoryTransport:
    """:class:`~orch_serv.transport.base.Transport` on an in-process :class:`Broker`."""

    def __init__(self, broker: Broker, topology: Topology, *, batch_max: int = 64) -> None:
        self.broker = broker
        self.topology = topology
        self._consumers: list[MemoryConsumer] = []
        self._closed = False
        self._batcher = PublishBatcher(self._route_main, max_batch=batch_max)
        broker.declare_exchange(topology.exchange, "direct")
        broker.declare_exchange(topology.dead_letter_exchange, "direct")
        broker.declare_exchange(topology.control_exchange, "fanout")
        broker.declare_queue(topology.dead_letter_queue)
        broker.bind(topology.dead_letter_queue, topology.dead_letter_exchange, topology.dead_key)

    @classmethod
    async def connect(
        cls,
        url: str = "memory://",
        *,
        namespace: str = "orch_serv",
        declare: bool = True,
        batch_max: int = 64,
    ) -> Self:
        """Open a transport on the broker of ``url``. With ``declare=False`` nothing is
        created: the namespace must exist on that broker, else :class:`TransportError`.
        ``batch_max``: the most envelopes one message carries (1: never batch)."""
        broker, topology = broker_for(url), Topology(namespace)
        if not declare:
            if topology.dead_letter_queue not in broker.queues:
                raise TransportError(
                    f"namespace {namespace!r} has no dead-letter queue "
                    f"({topology.dead_letter_queue!r}): nothing has run there (check --namespace)"
                )
            for name in (topology.exchange, topology.dead_letter_exchange):
                if name not in broker.exchanges:
                    raise TransportError(
                        f"namespace {namespace!r} has no exchange ({name!r}): nothing has run "
                        "there (check --namespace)"
                    )
        return cls(broker, topology, batch_max=batch_max)

    async def close(self) -> None:
        """Close every consumer of this transport (unacked messages are redelivered)."""
        if not self._closed:
            self._closed = True
            for consumer in self._consumers:
                await consumer.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check(self) -> None:
        if self._closed:
            raise TransportError("the transport is closed")

    async def _declare(self, name: str, key: str) -> str:
        self._check()
        self.broker.declare_queue(
            name,
            dead_letter_exchange=self.topology.dead_letter_exchange,
            dead_letter_key=self.topology.dead_key,
        )
        self.broker.bind(name, self.topology.exchange, key)
        return name

    async def declare_service(self, service: str) -> str:
        """Declare the queue of ``service``."""
        topo = self.topology
        return await self._declare(topo.service_queue(service), topo.service_key(service))

    async def declare_orchestrator(self) -> str:
        """Declare the orchestrator queue."""
        topo = self.topology
        return await self._declare(topo.orchestrator_queue, topo.orchestrator_key)

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        kind: str | None = None,
    ) -> None:
        """Route to the bound queues, returning once routed ('confirmed' at once); unroutable
        raises PublishError. Concurrent publishes to one routing key share one batch message,
        as on RabbitMQ (see :mod:`~orch_serv.transport.batching`)."""
        self._check()
        self.broker.publishing += 1
        try:
            await self._batcher.publish(routing_key, bytes(body), message_id, headers, kind)
        finally:
            self.broker.publishing -= 1
            self.broker.activity.set()

    async def _route_main(
        self,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, Any] | None,
        kind: str | None,
    ) -> None:
        """One AMQP message to the main exchange (mandatory), batch or not."""
        message = Message(body, dict(headers or {}), routing_key, message_id, kind)
        self.broker.route(self.topology.exchange, routing_key, message, mandatory=True)

    async def consume(
        self, queue: str, handler: DeliveryHandler, *, prefetch: int
    ) -> MemoryConsumer:
        """Deliver ``queue``'s messages to ``handler``, as the RabbitMQ transport does
        (:func:`~orch_serv.transport.batch_delivery.deliver`): batches split into one
        delivery per envelope, every delivery settled whatever ``handler`` does."""
        self._check()
        if queue not in self.broker.queues:
            raise TransportError(f"queue {queue!r} must be declared before it is consumed")

        async def poison(target: Any, reason: str) -> None:
            await self.dead_letter(target, reason, queue=queue)

        async def on_message(delivery: MemoryDelivery) -> None:
            await deliver(delivery, handler, poison, self._route_main, queue=queue)

        consumer = MemoryConsumer(self.broker, self.broker.queues[queue], on_message, prefetch)
        self._consumers.append(consumer)
        return consumer

    async def queue_stats(self, queue: str) -> QueueStats | None:
        """Ready messages and consumers of ``queue``; None when it does not exist."""
        found = self.broker.queues.get(queue)
        if found is None:
            return None
        return QueueStats(queue, len(found.ready), len(found.consumers))

    async def dead_letter(self, delivery: Any, reason: str, *, queue: str) -> None:
        """Copy to the dead-letter queue with the reason, then ack the original."""
        headers = dead_letter_headers(delivery, reason, queue)
        message = Message(
            delivery.body,
            headers,
            self.topology.dead_key,
            delivery.message_id or headers[HEADER_DEAD_ID],
            getattr(delivery, "kind", None),
        )
        self.broker.route(
            self.topology.dead_letter_exchange, self.topology.dead_key, message, mandatory=True
        )
        await delivery.ack()

    async def publish_control(self, body: bytes, *, message_id: str) -> None:
        """Broadcast to every control queue (none bound is fine)."""
        self._check()
        message = Message(bytes(body), {}, "", message_id, None)
        self.broker.route(self.topology.control_exchange, "", message, mandatory=False)

    async def consume_control(self, handler: DeliveryHandler) -> MemoryConsumer:
        """Notices on a queue of this consumer's own; whatever the handler does, each ends
        up acked (:func:`~orch_serv.transport.guard.settle_notice`, as on RabbitMQ)."""
        self._check()
        name = f"{self.topology.control_exchange}.{uuid.uuid4().hex[:12]}"
        queue = self.broker.declare_queue(name)
        self.broker.bind(name, self.topology.control_exchange, "")

        async def on_message(delivery: MemoryDelivery) -> None:
            await settle_notice(delivery, handler)

        consumer = MemoryConsumer(self.broker, queue, on_message, 64)
        self._consumers.append(consumer)
        return consumer

    def _dead_queue(self) -> Queue:
        return self.broker.queues[self.topology.dead_letter_queue]

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; they stay."""
        return [_dead(m) for m in list(self._dead_queue().ready)[:limit]]

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> ReplayResult:
        """Publish dead letters again to the queue they came from, then drop them; one that
        cannot be published stays, in its place, and is reported."""
        self._check()
        queue = self._dead_queue()
        kept: deque[Message] = deque()
        replayed: list[str] = []
        failed: list[ReplayFailure] = []
        seen: set[str] = set()
        while queue.ready:
            message = queue.ready.popleft()
            dead = _dead(message)
            if message_ids is not None and dead.message_id not in message_ids:
                kept.append(message)
                continue
            seen.add(dead.message_id)
            exchange, routing_key = replay_route(dead, self.topology)
            again = Message(
                dead.body, replay_headers(dead.headers), routing_key, message.message_id, dead.kind
            )
            try:
                self.broker.route(exchange, routing_key, again, mandatory=True)
            except PublishError as exc:
                failed.append(ReplayFailure(dead.message_id, exc.message))
                kept.append(message)
                continue
            replayed.append(dead.message_id)
        queue.ready.extend(kept)
        missing = tuple(dict.fromkeys(i for i in message_ids or () if i not in seen))
        return ReplayResult(tuple(replayed), tuple(failed), missing)

    async def purge_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Drop dead letters (all, or those ids)."""
        queue = self._dead_queue()
        before = len(queue.ready)
        if message_ids is None:
            queue.ready.clear()
        else:
            queue.ready = deque(m for m in queue.ready if _dead(m).message_id not in message_ids)
        return before - len(queue.ready)


def _dead(message: Message) -> DeadLetter:
    return read_dead_letter(
        message.headers,
        message_id=message.message_id,
        routing_key=message.routing_key,
        kind=message.kind,
        body=message.body,
    )
