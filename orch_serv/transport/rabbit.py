"""RabbitMQ transport on aio-pika: robust connection, confirmed persistent publishes,
manual acks, topology declared idempotently and restored on reconnect.

Poison messages never stop a consumer: properties pamqp cannot decode are replaced by a marker
(:mod:`orch_serv.transport.tolerant`, installed when this module is imported) and such a
message is dead-lettered before any handler sees it; every delivery is settled whatever its
handler does (:mod:`orch_serv.transport.guard`); headers copied from an incoming message are
made wire-safe (:mod:`orch_serv.transport.wiresafe`); and every publish checks that its
properties encode *before* it reaches the channel, because aiormq numbers a publish for
publisher confirms before it marshals it: a publish that failed there would shift every later
confirm of the channel onto the wrong message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Self

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from orch_serv.constants import CONTENT_TYPE, HEADER_DEAD_ID
from orch_serv.exceptions import PublishError, TransportError, Unroutable
from orch_serv.transport import tolerant
from orch_serv.transport.base import (
    DeadLetter,
    DeliveryHandler,
    QueueStats,
    ReplayResult,
    Topology,
)
from orch_serv.transport.batching import PublishBatcher, deliver
from orch_serv.transport.deadletters import dead_letter_headers
from orch_serv.transport.encodable import UnencodableMessage, check_encodable
from orch_serv.transport.failover import connect_failover
from orch_serv.transport.guard import log, settle_notice
from orch_serv.transport.rabbit_delivery import AMQP_ERRORS, RabbitConsumer, RabbitDelivery
from orch_serv.transport.rabbit_dlq import RabbitDeadLetters
from orch_serv.transport.rabbit_setup import (
    check_topology,
    declare_topology,
    frame_max,
    named,
    queue_stats,
    queue_type,
)
from orch_serv.transport.wiresafe import fit_short
from orch_serv.urls import check_amqp_url, mask_url, split_urls

tolerant.install()

#: What a failed connection attempt raises: the AMQP and socket errors, and the bare
#: ``StopAsyncIteration`` aiormq lets out when the socket ends before the broker's first
#: frame (a cut connection, a proxy with no broker behind it; found by the chaos suite).
CONNECT_ERRORS = (*AMQP_ERRORS, aio_pika.exceptions.AMQPException, StopAsyncIteration)

#: Deliveries of one message (quorum queues) after which the broker dead-letters it.
DEFAULT_DELIVERY_LIMIT = 20

__all__ = [
    "DEFAULT_DELIVERY_LIMIT",
    "RabbitConsumer",
    "RabbitDelivery",
    "RabbitTransport",
    "UnencodableMessage",
]


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
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        declare: bool = True,
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._exchange = exchange
        self._dlx = dlx
        self.topology = topology
        self._quorum = quorum
        self._delivery_limit = delivery_limit
        self._declare_topology = declare
        self._declared: dict[str, dict[str, Any]] = {}
        self._closed = False
        self._batcher = PublishBatcher(self._publish_main, max_batch=batch_max)
        self._frame_max = frame_max(connection)
        self._dead = RabbitDeadLetters(connection, topology, self._publish_named)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        namespace: str = "orch_serv",
        quorum_queues: bool = False,
        timeout: float = 10.0,
        batch_max: int = 64,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        declare: bool = True,
    ) -> Self:
        """Connect (failing fast if RabbitMQ does not answer) and declare the topology.

        With ``declare=False`` nothing is created: the namespace's exchange and dead-letter
        queue must exist already (checked passively), else :class:`TransportError` says so;
        queues are then only ever declared passively. For read-only tools (``orch-serv dlq``,
        ``status``) that must not create a namespace by a typo."""
        topology = Topology(namespace)
        try:
            targets = [named(u, namespace) for u in split_urls(check_amqp_url(url))]
        except ValueError as exc:
            raise TransportError(f"invalid RabbitMQ URL: {exc}") from None
        try:
            connection = await connect_failover(targets, timeout=timeout, errors=CONNECT_ERRORS)
        except CONNECT_ERRORS as exc:
            raise TransportError(f"cannot connect to RabbitMQ at {mask_url(url)}: {exc}") from exc
        try:
            if declare:
                channel, exchange, dlx = await declare_topology(connection, topology, quorum_queues)
            else:
                await check_topology(connection, topology)
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                exchange = await channel.get_exchange(topology.exchange, ensure=False)
                dlx = await channel.get_exchange(topology.dead_letter_exchange, ensure=False)
        except BaseException as exc:
            await connection.close()
            if isinstance(exc, AMQP_ERRORS):
                raise TransportError(f"cannot declare the topology: {exc}") from exc
            raise
        return cls(
            connection,
            channel,
            exchange,
            dlx,
            topology,
            quorum=quorum_queues,
            batch_max=batch_max,
            delivery_limit=delivery_limit,
            declare=declare,
        )

    @property
    def connection(self) -> AbstractRobustConnection:
        """The robust connection (a :class:`FailoverConnection` over the listed nodes)."""
        return self._connection

    async def close(self) -> None:
        """Close the connection (and its channels); idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(*AMQP_ERRORS):  # already closed by the broker
            await self._connection.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- queues --------------------------------------------------------------------------------
    def queue_arguments(self) -> dict[str, Any]:
        """The arguments of service and orchestrator queues: the dead-letter exchange, and
        for quorum queues the delivery limit (changing them on an existing queue fails with
        ``PRECONDITION_FAILED``: see docs/protocol.md)."""
        arguments: dict[str, Any] = {
            "x-dead-letter-exchange": self.topology.dead_letter_exchange,
            "x-dead-letter-routing-key": self.topology.dead_key,
            **queue_type(self._quorum),
        }
        if self._quorum and self._delivery_limit > 0:
            arguments["x-delivery-limit"] = self._delivery_limit
        return arguments

    async def _declare(self, name: str, routing_key: str) -> str:
        if name in self._declared:
            return name
        arguments = self.queue_arguments()
        try:
            if not self._declare_topology:
                if await self.queue_stats(name) is None:
                    raise TransportError(f"queue {name!r} does not exist (read-only transport)")
                await self._channel.get_queue(name, ensure=False)
            else:
                queue = await self._channel.declare_queue(name, durable=True, arguments=arguments)
                await queue.bind(self._exchange, routing_key)
        except AMQP_ERRORS as exc:
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

    async def queue_stats(self, queue: str) -> QueueStats | None:
        """Ready messages and consumers of ``queue`` (passive declare on a throwaway channel);
        None when the queue does not exist."""
        return await queue_stats(self._connection, queue)

    # -- publishing ----------------------------------------------------------------------------
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

    async def _publish_named(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, Any] | None,
        kind: str | None,
    ) -> None:
        """Publish through the main exchange or, for ``""``, the default exchange."""
        target = self._channel.default_exchange if exchange == "" else self._exchange
        await self._publish(target, routing_key, body, message_id, headers, kind)

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
        check_encodable(message, routing_key, self._frame_max)
        try:
            confirmation = await exchange.publish(message, routing_key, mandatory=True)
        except aiormq.exceptions.PublishError as exc:
            raise Unroutable(f"no queue is bound to routing key {routing_key!r}") from exc
        except AMQP_ERRORS as exc:
            raise PublishError(f"publish to {routing_key!r} failed: {exc}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise PublishError(f"publish to {routing_key!r} was not confirmed: {confirmation!r}")

    # -- consuming -----------------------------------------------------------------------------
    async def consume(
        self, queue: str, handler: DeliveryHandler, *, prefetch: int
    ) -> RabbitConsumer:
        """Consume ``queue`` on a dedicated channel with ``prefetch`` unacked messages.

        Every delivery goes through :func:`~orch_serv.transport.batch_delivery.deliver`, as on
        the embedded broker: one whose properties could not be decoded is dead-lettered before
        ``handler`` sees it; a batch is split into one delivery per envelope; one whose handler
        raises is dead-lettered by the guard."""
        if queue not in self._declared:
            raise TransportError(f"queue {queue!r} must be declared before it is consumed")
        try:
            channel = await self._connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=prefetch)
            if self._declare_topology:
                declared = await channel.declare_queue(
                    queue, durable=True, arguments=self._declared[queue]
                )
            else:
                declared = await channel.get_queue(queue, ensure=True)

            async def poison(target: Any, reason: str) -> None:
                await self.dead_letter(target, reason, queue=queue)

            async def on_message(message: AbstractIncomingMessage) -> None:
                delivery = RabbitDelivery(message)
                await deliver(delivery, handler, poison, self._publish_main, queue=queue)

            tag = await declared.consume(on_message, no_ack=False)
        except AMQP_ERRORS as exc:
            raise TransportError(f"cannot consume {queue!r}: {exc}") from exc
        return RabbitConsumer(channel, declared, tag)

    async def dead_letter(self, delivery: Any, reason: str, *, queue: str) -> None:
        """Copy to the dead-letter queue with the reason (confirmed), then ack the original.

        Should even the wire-safe copy be unencodable, the delivery is rejected instead (no
        requeue): the broker moves it to the dead-letter exchange of its queue."""
        headers = dead_letter_headers(delivery, reason, queue)
        message_id = fit_short(delivery.message_id) or headers[HEADER_DEAD_ID]
        try:
            await self._publish(
                self._dlx,
                self.topology.dead_key,
                delivery.body,
                message_id,
                headers,
                fit_short(getattr(delivery, "kind", None)),
            )
        except UnencodableMessage:
            log.error("dead_letter_unencodable", queue=queue, reason=reason, exc_info=True)
            await delivery.reject()
            return
        await delivery.ack()

    # -- control exchange --------------------------------------------------------------------
    async def publish_control(self, body: bytes, *, message_id: str) -> None:
        """Broadcast a notice to every service process (transient, unconfirmed routing)."""
        message = aio_pika.Message(body, content_type=CONTENT_TYPE, message_id=message_id)
        check_encodable(message, "", self._frame_max)
        try:
            exchange = await self._channel.get_exchange(self.topology.control_exchange)
            await exchange.publish(message, "", mandatory=False)
        except AMQP_ERRORS as exc:
            raise PublishError(f"control notice failed: {exc}") from exc

    async def consume_control(self, handler: DeliveryHandler) -> RabbitConsumer:
        """Notices arrive on an exclusive, auto-deleted queue of this connection's own."""
        try:
            channel = await self._connection.channel(publisher_confirms=False)
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(self.topology.control_exchange)

            async def on_message(message: AbstractIncomingMessage) -> None:
                await settle_notice(RabbitDelivery(message), handler)

            tag = await queue.consume(on_message, no_ack=False)
        except AMQP_ERRORS as exc:
            raise TransportError(f"cannot consume the control exchange: {exc}") from exc
        return RabbitConsumer(channel, queue, tag)

    # -- dead letters ------------------------------------------------------------------------
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; they stay in the queue."""
        return await self._dead.list(limit)

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> ReplayResult:
        """Publish dead letters again to the queue they came from (see
        :func:`~orch_serv.transport.deadletters.replay_route`), one by one; a letter that
        cannot be published stays in the queue and is reported, the others are replayed."""
        return await self._dead.replay(message_ids)

    async def purge_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Remove dead letters (all, or those ids); how many."""
        return await self._dead.purge(message_ids)
