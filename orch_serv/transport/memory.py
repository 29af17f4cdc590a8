"""An in-memory broker with the RabbitMQ semantics the engine relies on, for the embedded
mode and the test kit: direct and fanout exchanges, queues that live as long as the process,
manual acks with a prefetch, redelivery (flagged) of unacked messages when their consumer
goes away, dead-lettering with a reason, mandatory publishes that fail when unroutable,
and publisher confirms that are immediate.

Transports opened on the same ``memory://NAME`` URL share one broker.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self

from orch_serv.constants import (
    HEADER_DEAD_ID,
)
from orch_serv.exceptions import PublishError, TransportError
from orch_serv.transport.base import DeadLetter, DeliveryHandler, Topology
from orch_serv.transport.deadletters import (
    dead_letter_headers,
    read_dead_letter,
    replay_headers,
)


@dataclass(frozen=True, slots=True)
class Message:
    """A message as the broker keeps it."""

    body: bytes
    headers: Mapping[str, Any]
    routing_key: str
    message_id: str | None
    kind: str | None
    redelivered: bool = False


@dataclass(eq=False)
class Queue:
    """A queue: ready messages, and the consumers taking from it."""

    name: str
    dead_letter_exchange: str | None = None
    dead_letter_key: str | None = None
    ready: deque[Message] = field(default_factory=deque)
    consumers: list[MemoryConsumer] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, message: Message, *, front: bool = False) -> None:
        (self.ready.appendleft if front else self.ready.append)(message)
        self.changed.set()


class Broker:
    """The 'server' of the embedded mode: exchanges, bindings and queues."""

    def __init__(self) -> None:
        self.exchanges: dict[str, str] = {}  # name -> "direct" | "fanout"
        self.bindings: dict[str, dict[str, set[str]]] = {}  # exchange -> key -> queues
        self.queues: dict[str, Queue] = {}
        self.activity = asyncio.Event()  # set whenever something is published or acked

    def declare_exchange(self, name: str, kind: str) -> None:
        """Idempotent."""
        self.exchanges.setdefault(name, kind)
        self.bindings.setdefault(name, {})

    def declare_queue(self, name: str, **arguments: Any) -> Queue:
        """Idempotent."""
        if name not in self.queues:
            self.queues[name] = Queue(name, **arguments)
        return self.queues[name]

    def bind(self, queue: str, exchange: str, key: str) -> None:
        """Route ``key`` on ``exchange`` to ``queue``."""
        self.bindings[exchange].setdefault(key, set()).add(queue)

    def route(self, exchange: str, key: str, message: Message, *, mandatory: bool) -> int:
        """Deliver to every bound queue; returns how many."""
        if exchange not in self.exchanges:
            raise PublishError(f"no exchange {exchange!r}")
        table = self.bindings[exchange]
        if self.exchanges[exchange] == "fanout":
            targets = set().union(*table.values()) if table else set()
        else:
            targets = table.get(key, set())
        if not targets and mandatory:
            raise PublishError(f"no queue is bound to routing key {key!r}")
        for name in sorted(targets):
            self.queues[name].put(message)
        self.activity.set()
        return len(targets)

    def ready(self) -> int:
        """Messages waiting in all queues but the dead-letter one (for the test kit)."""
        return sum(len(q.ready) for q in self.queues.values() if q.dead_letter_exchange)

    def unacked(self, queue: str | None = None) -> int:
        """Messages delivered and not yet settled, in one queue or in all."""
        queues = [self.queues[queue]] if queue else list(self.queues.values())
        return sum(len(c.unacked) for q in queues for c in q.consumers)


_BROKERS: dict[str, Broker] = {}


def broker_for(url: str) -> Broker:
    """The process-wide broker of a ``memory://NAME`` URL."""
    name = url.removeprefix("memory://").strip("/") or "default"
    if name not in _BROKERS:
        _BROKERS[name] = Broker()
    return _BROKERS[name]


class MemoryDelivery:
    """A delivered message; ack, requeue or dead-letter it exactly once."""

    def __init__(self, message: Message, consumer: MemoryConsumer, tag: int) -> None:
        self._message = message
        self._consumer = consumer
        self._tag = tag

    @property
    def body(self) -> bytes:
        """The raw body."""
        return self._message.body

    @property
    def headers(self) -> Mapping[str, Any]:
        """Message headers."""
        return self._message.headers

    @property
    def redelivered(self) -> bool:
        """True when it was delivered before to a consumer that went away."""
        return self._message.redelivered

    @property
    def routing_key(self) -> str:
        """The routing key it was published with."""
        return self._message.routing_key

    @property
    def message_id(self) -> str | None:
        """The message id."""
        return self._message.message_id

    @property
    def kind(self) -> str | None:
        """The message type (envelope kind)."""
        return self._message.kind

    async def ack(self) -> None:
        """Done with it."""
        self._consumer.settle(self._tag, requeue=False)

    async def requeue(self) -> None:
        """Back to the front of its queue, flagged redelivered."""
        self._consumer.settle(self._tag, requeue=True)


class MemoryConsumer:
    """Delivers a queue's messages to a handler, at most ``prefetch`` unacked at a time."""

    def __init__(self, broker: Broker, queue: Queue, handler: DeliveryHandler, prefetch: int):
        self.broker = broker
        self.queue = queue
        self.handler = handler
        self.prefetch = prefetch
        self.unacked: dict[int, Message] = {}
        self._tags = itertools.count(1)
        self._room = asyncio.Event()
        self._room.set()
        self._cancelled = False
        self._handling: set[asyncio.Task[None]] = set()
        queue.consumers.append(self)
        self._task = asyncio.create_task(self._dispatch())

    async def _dispatch(self) -> None:
        queue = self.queue
        while not self._cancelled:
            if not queue.ready:
                queue.changed.clear()
                await queue.changed.wait()
                continue
            if len(self.unacked) >= self.prefetch:
                self._room.clear()
                await self._room.wait()
                continue
            message = queue.ready.popleft()
            tag = next(self._tags)
            self.unacked[tag] = message
            task = asyncio.create_task(self._deliver(MemoryDelivery(message, self, tag)))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)
            if len(queue.consumers) > 1:
                await asyncio.sleep(0)  # let competing consumers take their share

    async def _deliver(self, delivery: MemoryDelivery) -> None:
        await self.handler(delivery)

    def settle(self, tag: int, *, requeue: bool) -> None:
        message = self.unacked.pop(tag, None)
        if message is None:
            raise TransportError("delivery already settled, or its consumer went away")
        if requeue:
            self.queue.put(replace(message, redelivered=True), front=True)
        self._room.set()
        self.broker.activity.set()

    async def cancel(self) -> None:
        """Stop new deliveries; unacked ones can still be settled."""
        if not self._cancelled:
            self._cancelled = True
            self._task.cancel()
            if self in self.queue.consumers:
                self.queue.consumers.remove(self)
            self.queue.changed.set()  # wake the others

    async def close(self) -> None:
        """Cancel, and put every unacked message back (flagged redelivered)."""
        await self.cancel()
        for tag in sorted(self.unacked, reverse=True):
            self.queue.put(replace(self.unacked.pop(tag), redelivered=True), front=True)
        self.broker.activity.set()


class MemoryTransport:
    """:class:`~orch_serv.transport.base.Transport` on an in-process :class:`Broker`."""

    def __init__(self, broker: Broker, topology: Topology) -> None:
        self.broker = broker
        self.topology = topology
        self._consumers: list[MemoryConsumer] = []
        self._closed = False
        broker.declare_exchange(topology.exchange, "direct")
        broker.declare_exchange(topology.dead_letter_exchange, "direct")
        broker.declare_exchange(topology.control_exchange, "fanout")
        broker.declare_queue(topology.dead_letter_queue)
        broker.bind(topology.dead_letter_queue, topology.dead_letter_exchange, topology.dead_key)

    @classmethod
    async def connect(cls, url: str = "memory://", *, namespace: str = "orch_serv") -> Self:
        """Open a transport on the broker of ``url``."""
        return cls(broker_for(url), Topology(namespace))

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
        """Route to the bound queues ('confirmed' at once); unroutable raises PublishError."""
        self._check()
        message = Message(bytes(body), dict(headers or {}), routing_key, message_id, kind)
        self.broker.route(self.topology.exchange, routing_key, message, mandatory=True)

    async def consume(
        self, queue: str, handler: DeliveryHandler, *, prefetch: int
    ) -> MemoryConsumer:
        """Deliver ``queue``'s messages to ``handler``."""
        self._check()
        if queue not in self.broker.queues:
            raise TransportError(f"queue {queue!r} must be declared before it is consumed")
        consumer = MemoryConsumer(self.broker, self.broker.queues[queue], handler, prefetch)
        self._consumers.append(consumer)
        return consumer

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
        """Notices on a queue of this consumer's own."""
        name = f"{self.topology.control_exchange}.{uuid.uuid4().hex[:12]}"
        self.broker.declare_queue(name)
        self.broker.bind(name, self.topology.control_exchange, "")
        return await self.consume(name, handler, prefetch=64)

    def _dead_queue(self) -> Queue:
        return self.broker.queues[self.topology.dead_letter_queue]

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; they stay."""
        return [_dead(m) for m in list(self._dead_queue().ready)[:limit]]

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Publish dead letters again to where they came from, then drop them."""
        queue = self._dead_queue()
        kept: deque[Message] = deque()
        replayed = 0
        while queue.ready:
            message = queue.ready.popleft()
            dead = _dead(message)
            if message_ids is not None and dead.message_id not in message_ids:
                kept.append(message)
                continue
            headers = replay_headers(dead.headers)
            await self.publish(
                dead.routing_key,
                dead.body,
                message_id=message.message_id or "",
                headers=headers,
                kind=dead.kind,
            )
            replayed += 1
        queue.ready.extend(kept)
        return replayed

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
