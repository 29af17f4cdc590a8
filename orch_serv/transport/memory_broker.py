"""The embedded broker: exchanges, bindings, queues and consumers in one process, with the
RabbitMQ semantics the engine relies on (see :mod:`orch_serv.transport.memory`)."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from orch_serv.constants import HEADER_BATCH, HEADER_REDELIVERED
from orch_serv.exceptions import PublishError, TransportError, Unroutable

#: What a consumer does with each delivery (the transport's shared delivery path).
OnMessage = Callable[["MemoryDelivery"], Coroutine[Any, Any, None]]


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
    """The 'server' of the embedded mode: exchanges, bindings and queues.

    It also counts what was routed, for tests that want to see batching at work:
    ``messages_routed`` (AMQP messages, a batch counting once), ``batches_routed`` (messages
    that carried more than one envelope, ``x-orch-serv-batch``) and ``largest_batch`` (the
    most envelopes one message carried; 1 when nothing was batched, 0 before any publish).
    """

    def __init__(self) -> None:
        self.exchanges: dict[str, str] = {}  # name -> "direct" | "fanout"
        self.bindings: dict[str, dict[str, set[str]]] = {}  # exchange -> key -> queues
        self.queues: dict[str, Queue] = {}
        self.activity = asyncio.Event()  # set whenever something is published or acked
        #: Publishes accepted by a transport and not yet routed (waiting for their batch).
        self.publishing = 0
        self.messages_routed = 0
        self.batches_routed = 0
        self.largest_batch = 0

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
        if exchange == "":  # the default exchange: straight to the queue named by the key
            targets = {key} if key in self.queues else set()
        elif exchange not in self.exchanges:
            raise PublishError(f"no exchange {exchange!r}")
        elif self.exchanges[exchange] == "fanout":
            table = self.bindings[exchange]
            targets = set().union(*table.values()) if table else set()
        else:
            targets = self.bindings[exchange].get(key, set())
        if not targets and mandatory:
            raise Unroutable(f"no queue is bound to routing key {key!r}")
        for name in sorted(targets):
            self.queues[name].put(message)
        self._count(message)
        self.activity.set()
        return len(targets)

    def _count(self, message: Message) -> None:
        size = message.headers.get(HEADER_BATCH)
        envelopes = size if isinstance(size, int) and size > 1 else 1
        self.messages_routed += 1
        self.batches_routed += int(envelopes > 1)
        self.largest_batch = max(self.largest_batch, envelopes)

    def dead_letter_rejected(self, queue: Queue, message: Message) -> None:
        """What RabbitMQ does with a rejected message: to the queue's dead-letter exchange,
        with the reason in an ``x-death`` entry (dropped when the queue has none)."""
        if queue.dead_letter_exchange is None:
            return
        death = {"reason": "rejected", "queue": queue.name, "routing-keys": [message.routing_key]}
        headers = {**message.headers, "x-death": [death]}
        key = queue.dead_letter_key or message.routing_key
        dead = replace(message, headers=headers, routing_key=key, redelivered=False)
        self.route(queue.dead_letter_exchange, key, dead, mandatory=False)

    def ready(self) -> int:
        """Messages waiting in all queues but the dead-letter one, and publishes on their way
        to them (held for their batch until the end of the loop turn): for the test kit."""
        waiting = sum(len(q.ready) for q in self.queues.values() if q.dead_letter_exchange)
        return waiting + self.publishing

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
        """True when it was delivered before to a consumer that went away (or requeued), or
        when it was given back out of a batch and re-published on its own."""
        return self._message.redelivered or bool(self._message.headers.get(HEADER_REDELIVERED))

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

    async def reject(self) -> None:
        """Refused: to the queue's dead-letter exchange with an ``x-death`` record, as
        RabbitMQ does (dropped when the queue has none)."""
        self._consumer.settle(self._tag, requeue=False, reject=True)

    @property
    def settled(self) -> bool:
        """True once acked, requeued or rejected (or its consumer went away)."""
        return not self._consumer.holds(self._tag)


class MemoryConsumer:
    """Delivers a queue's messages, at most ``prefetch`` unacked at a time (a batch counts
    once, as on RabbitMQ), each to ``on_message`` in a task of its own; ``on_message`` is the
    transport's delivery path, which settles every delivery whatever its handler does."""

    def __init__(self, broker: Broker, queue: Queue, on_message: OnMessage, prefetch: int):
        self.broker = broker
        self.queue = queue
        self.on_message = on_message
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
            task = asyncio.create_task(self.on_message(MemoryDelivery(message, self, tag)))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)
            if len(queue.consumers) > 1:
                await asyncio.sleep(0)  # let competing consumers take their share

    def holds(self, tag: int) -> bool:
        """True while the delivery of ``tag`` is unsettled."""
        return tag in self.unacked

    def settle(self, tag: int, *, requeue: bool, reject: bool = False) -> None:
        message = self.unacked.pop(tag, None)
        if message is None:
            raise TransportError("delivery already settled, or its consumer went away")
        if requeue:
            self.queue.put(replace(message, redelivered=True), front=True)
        elif reject:
            self.broker.dead_letter_rejected(self.queue, message)
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
