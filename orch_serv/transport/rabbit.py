"""RabbitMQ transport on aio-pika: robust connection, confirmed persistent publishes,
manual acks, topology declared idempotently and restored on reconnect."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any, Self

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from yarl import URL

from orch_serv.constants import (
    CONTENT_TYPE,
    HEADER_BATCH,
    HEADER_DEAD_ID,
    HEADER_REDELIVERED,
)
from orch_serv.exceptions import PublishError, TransportError
from orch_serv.transport.base import DeadLetter, DeliveryHandler, Topology
from orch_serv.transport.batching import BatchState, ElementDelivery, PublishBatcher, split_batch
from orch_serv.transport.deadletters import (
    dead_letter_headers,
    read_dead_letter,
    replay_headers,
)

_AMQP_ERRORS = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


class RabbitDelivery:
    """A :class:`~orch_serv.transport.base.Delivery` backed by an aio-pika message."""

    __slots__ = ("_message",)

    def __init__(self, message: AbstractIncomingMessage) -> None:
        self._message = message

    @property
    def body(self) -> bytes:
        """The raw body."""
        return self._message.body

    @property
    def headers(self) -> Mapping[str, Any]:
        """AMQP headers."""
        return self._message.headers or {}

    @property
    def redelivered(self) -> bool:
        """Whether it was delivered before: by RabbitMQ's flag, or because it was given back
        out of a batch and re-published on its own."""
        headers = self._message.headers or {}
        return bool(self._message.redelivered) or bool(headers.get(HEADER_REDELIVERED))

    @property
    def routing_key(self) -> str:
        """Routing key it was published with."""
        return self._message.routing_key or ""

    @property
    def message_id(self) -> str | None:
        """The AMQP message id."""
        return self._message.message_id

    @property
    def kind(self) -> str | None:
        """The AMQP type property (the envelope kind)."""
        return self._message.type

    async def ack(self) -> None:
        """Ack; a lost channel means the broker will redeliver, which the engine tolerates."""
        try:
            await self._message.ack()
        except _AMQP_ERRORS as exc:
            raise TransportError(f"ack failed: {exc}") from exc

    async def requeue(self) -> None:
        """Give the message back to its queue."""
        try:
            await self._message.nack(requeue=True)
        except _AMQP_ERRORS as exc:
            raise TransportError(f"requeue failed: {exc}") from exc


class RabbitConsumer:
    """A consumer on its own channel (so its prefetch is its own)."""

    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, tag: str) -> None:
        self._channel = channel
        self._queue = queue
        self._tag = tag
        self._cancelled = False

    async def cancel(self) -> None:
        """Stop new deliveries; idempotent."""
        if self._cancelled:
            return
        self._cancelled = True
        try:
            await self._queue.cancel(self._tag)
        except _AMQP_ERRORS:
            pass  # channel already gone: the broker has stopped delivering anyway

    async def close(self) -> None:
        """Cancel and close the channel: RabbitMQ requeues whatever is still unacked."""
        await self.cancel()
        try:
            await self._channel.close()
        except _AMQP_ERRORS:
            pass  # already closed


class RabbitTransport:
    """:class:`~orch_serv.transport.base.Transport` over one robust aio-pika connection."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        dlx: AbstractExchange,
        topology: Topology,
        *,
        quorum: bool,
        batch_max: int = 64,
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._exchange = exchange
        self._dlx = dlx
        self.topology = topology
        self._quorum = quorum
        self._declared: dict[str, dict[str, Any]] = {}
        self._consumer_channels: list[AbstractChannel] = []
        self._closed = False
        self._batcher = PublishBatcher(self._publish_main, max_batch=batch_max)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        namespace: str = "orch_serv",
        quorum_queues: bool = False,
        timeout: float = 10.0,
        batch_max: int = 64,
    ) -> Self:
        """Connect (failing fast if RabbitMQ does not answer) and declare the topology."""
        topology = Topology(namespace)
        try:
            connection = await aio_pika.connect_robust(_named(url, namespace), timeout=timeout)
        except (*_AMQP_ERRORS, aio_pika.exceptions.AMQPException) as exc:
            raise TransportError(f"cannot connect to RabbitMQ at {url}: {exc}") from exc
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.declare_exchange(
                topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
            )
            dlx = await channel.declare_exchange(
                topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
            )
            await channel.declare_exchange(
                topology.control_exchange, aio_pika.ExchangeType.FANOUT, durable=True
            )
            dead = await channel.declare_queue(
                topology.dead_letter_queue, durable=True, arguments=_queue_type(quorum_queues)
            )
            await dead.bind(dlx, topology.dead_key)
        except _AMQP_ERRORS as exc:
            await connection.close()
            raise TransportError(f"cannot declare the topology: {exc}") from exc
        return cls(
            connection, channel, exchange, dlx, topology, quorum=quorum_queues, batch_max=batch_max
        )

    async def close(self) -> None:
        """Close the connection (and its channels); idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._connection.close()
        except _AMQP_ERRORS:
            pass  # already closed by the broker

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _declare(self, name: str, routing_key: str) -> str:
        if name in self._declared:
            return name
        arguments: dict[str, Any] = {
            "x-dead-letter-exchange": self.topology.dead_letter_exchange,
            "x-dead-letter-routing-key": self.topology.dead_key,
            **_queue_type(self._quorum),
        }
        try:
            queue = await self._channel.declare_queue(name, durable=True, arguments=arguments)
            await queue.bind(self._exchange, routing_key)
        except _AMQP_ERRORS as exc:
            raise TransportError(f"cannot declare queue {name!r}: {exc}") from exc
        self._declared[name] = arguments
        return name

    async def declare_service(self, service: str) -> str:
        """Declare the queue of ``service`` (idempotent)."""
        topo = self.topology
        return await self._declare(topo.service_queue(service), topo.service_key(service))

    async def declare_orchestrator(self) -> str:
        """Declare the orchestrator queue (idempotent)."""
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
        """Persistent publish to the main exchange, returning once the broker confirmed it.
        Concurrent publishes to one routing key share one batch message (see batching)."""
        await self._batcher.publish(routing_key, body, message_id, headers, kind)

    async def _publish_main(
        self,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, Any] | None,
        kind: str | None,
    ) -> None:
        await self._publish(self._exchange, routing_key, body, message_id, headers, kind)

    async def _publish(
        self,
        exchange: AbstractExchange,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, Any] | None,
        kind: str | None,
    ) -> None:
        message = aio_pika.Message(
            body,
            headers=dict(headers) if headers else None,
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type=kind,
        )
        try:
            confirmation = await exchange.publish(message, routing_key, mandatory=True)
        except aiormq.exceptions.PublishError as exc:
            raise PublishError(f"no queue is bound to routing key {routing_key!r}") from exc
        except _AMQP_ERRORS as exc:
            raise PublishError(f"publish to {routing_key!r} failed: {exc}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise PublishError(f"publish to {routing_key!r} was not confirmed: {confirmation!r}")

    async def consume(
        self, queue: str, handler: DeliveryHandler, *, prefetch: int
    ) -> RabbitConsumer:
        """Consume ``queue`` on a dedicated channel with ``prefetch`` unacked messages."""
        try:
            channel = await self._connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=prefetch)
            if queue not in self._declared:
                raise TransportError(f"queue {queue!r} must be declared before it is consumed")
            declared = await channel.declare_queue(
                queue, durable=True, arguments=self._declared[queue]
            )

            async def on_message(message: AbstractIncomingMessage) -> None:
                delivery = RabbitDelivery(message)
                parts = split_batch(message.body) if HEADER_BATCH in delivery.headers else None
                if not parts:
                    await handler(delivery)
                    return
                routing_key = delivery.routing_key
                headers = {k: v for k, v in delivery.headers.items() if k != HEADER_BATCH}

                async def give_back(body: bytes, message_id: str | None) -> None:
                    again = {**headers, HEADER_REDELIVERED: 1}
                    await self._publish_main(routing_key, body, message_id or "", again, None)

                state = BatchState(len(parts), delivery.ack, give_back)
                await asyncio.gather(
                    *(handler(ElementDelivery(delivery, state, p, i)) for i, p in enumerate(parts))
                )

            tag = await declared.consume(on_message, no_ack=False)
        except _AMQP_ERRORS as exc:
            raise TransportError(f"cannot consume {queue!r}: {exc}") from exc
        self._consumer_channels.append(channel)
        return RabbitConsumer(channel, declared, tag)

    async def dead_letter(self, delivery: Any, reason: str, *, queue: str) -> None:
        """Copy to the dead-letter queue with the reason (confirmed), then ack the original."""
        headers = dead_letter_headers(delivery, reason, queue)
        await self._publish(
            self._dlx,
            self.topology.dead_key,
            delivery.body,
            delivery.message_id or headers[HEADER_DEAD_ID],
            headers,
            getattr(delivery, "kind", None),
        )
        await delivery.ack()

    # -- control exchange --------------------------------------------------------------------
    async def publish_control(self, body: bytes, *, message_id: str) -> None:
        """Broadcast a notice to every service process (transient, unconfirmed routing)."""
        message = aio_pika.Message(body, content_type=CONTENT_TYPE, message_id=message_id)
        try:
            exchange = await self._channel.get_exchange(self.topology.control_exchange)
            await exchange.publish(message, "", mandatory=False)
        except _AMQP_ERRORS as exc:
            raise PublishError(f"control notice failed: {exc}") from exc

    async def consume_control(self, handler: DeliveryHandler) -> RabbitConsumer:
        """Notices arrive on an exclusive, auto-deleted queue of this connection's own."""
        try:
            channel = await self._connection.channel(publisher_confirms=False)
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(self.topology.control_exchange)

            async def on_message(message: AbstractIncomingMessage) -> None:
                await handler(RabbitDelivery(message))

            tag = await queue.consume(on_message, no_ack=False)
        except _AMQP_ERRORS as exc:
            raise TransportError(f"cannot consume the control exchange: {exc}") from exc
        return RabbitConsumer(channel, queue, tag)

    # -- dead letters ------------------------------------------------------------------------
    async def _take_dead(self, limit: int) -> tuple[AbstractChannel, list[AbstractIncomingMessage]]:
        channel = await self._connection.channel(publisher_confirms=False)
        queue = await channel.get_queue(self.topology.dead_letter_queue, ensure=True)
        taken: list[AbstractIncomingMessage] = []
        while len(taken) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append(message)
        return channel, taken

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; they stay in the queue."""
        try:
            channel, taken = await self._take_dead(limit)
            try:
                return [_dead(m) for m in taken]
            finally:
                await channel.close()  # every taken message goes back, in its place
        except _AMQP_ERRORS as exc:
            raise TransportError(f"cannot read the dead-letter queue: {exc}") from exc

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Re-publish dead letters to their original routing key, then remove them."""
        wanted = set(message_ids) if message_ids is not None else None
        replayed = 0
        try:
            channel, taken = await self._take_dead(_DEAD_SCAN)
            try:
                for message in taken:
                    dead = _dead(message)
                    if wanted is not None and dead.message_id not in wanted:
                        continue
                    headers = replay_headers(dead.headers)
                    await self.publish(
                        dead.routing_key,
                        dead.body,
                        message_id=message.message_id or dead.message_id,
                        headers=headers,
                        kind=dead.kind,
                    )
                    await message.ack()
                    replayed += 1
            finally:
                await channel.close()
        except _AMQP_ERRORS as exc:
            raise TransportError(f"cannot replay dead letters: {exc}") from exc
        return replayed

    async def purge_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Remove dead letters (all, or those ids)."""
        wanted = set(message_ids) if message_ids is not None else None
        purged = 0
        try:
            channel, taken = await self._take_dead(_DEAD_SCAN)
            try:
                for message in taken:
                    if wanted is None or _dead(message).message_id in wanted:
                        await message.ack()
                        purged += 1
            finally:
                await channel.close()
        except _AMQP_ERRORS as exc:
            raise TransportError(f"cannot purge dead letters: {exc}") from exc
        return purged


_DEAD_SCAN = 100_000


def _dead(message: AbstractIncomingMessage) -> DeadLetter:
    return read_dead_letter(
        message.headers or {},
        message_id=message.message_id,
        routing_key=message.routing_key or "",
        kind=message.type,
        body=message.body,
    )


def _named(url: str, namespace: str) -> URL:
    """The URL with a connection name operators can see in RabbitMQ (unless it has one)."""
    parsed = URL(url)
    if "name" in parsed.query:
        return parsed
    return parsed.update_query(name=f"orch_serv:{namespace}:{os.getpid()}")


def _queue_type(quorum: bool) -> dict[str, Any]:
    return {"x-queue-type": "quorum"} if quorum else {}
