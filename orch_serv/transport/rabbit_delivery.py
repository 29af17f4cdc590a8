"""The RabbitMQ side of one delivery and of one subscription (aio-pika)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from orch_serv.constants import HEADER_REDELIVERED
from orch_serv.exceptions import TransportError

AMQP_ERRORS = (
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
        except AMQP_ERRORS as exc:
            raise TransportError(f"ack failed: {exc}") from exc

    async def requeue(self) -> None:
        """Give the message back to its queue."""
        try:
            await self._message.nack(requeue=True)
        except AMQP_ERRORS as exc:
            raise TransportError(f"requeue failed: {exc}") from exc

    async def reject(self) -> None:
        """Reject without requeue: the broker dead-letters it through the queue's arguments."""
        try:
            await self._message.reject(requeue=False)
        except AMQP_ERRORS as exc:
            raise TransportError(f"reject failed: {exc}") from exc

    @property
    def settled(self) -> bool:
        """True once acked, requeued or rejected."""
        return bool(self._message.processed)


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
        except AMQP_ERRORS:
            pass  # channel already gone: the broker has stopped delivering anyway

    async def close(self) -> None:
        """Cancel and close the channel: RabbitMQ requeues whatever is still unacked."""
        await self.cancel()
        try:
            await self._channel.close()
        except AMQP_ERRORS:
            pass  # already closed
