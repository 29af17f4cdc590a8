"""The consuming side of batching, shared by both transports: one AMQP message in, one
guarded delivery per envelope out.

:func:`deliver` is the whole path from a delivered message to the handler, the same for
RabbitMQ and for the embedded broker: a message whose properties could not be decoded
(:mod:`orch_serv.transport.tolerant`) is dead-lettered before any handler sees it; a message
marked ``x-orch-serv-batch`` is split into one :class:`ElementDelivery` per envelope (byte
for byte when the JSON decoder cannot take an element), all handed to the handler at once;
every delivery, whole message or element, runs through the guard
(:func:`~orch_serv.transport.guard.run_guarded`), so an element whose handler raises is
dead-lettered on its own and its siblings go on. :class:`BatchState` settles the AMQP
message once every element is settled: acked, or rejected if one element could not even be
dead-lettered; an element given back is re-published alone, flagged
``x-orch-serv-redelivered``, before the batch counts it done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from orch_serv.constants import HEADER_BATCH, HEADER_REDELIVERED
from orch_serv.exceptions import TransportError
from orch_serv.transport.base import Delivery, DeliveryHandler
from orch_serv.transport.batch_wire import RawPublish, element_headers, split_batch
from orch_serv.transport.guard import (
    HEADER_UNDECODABLE,
    Poison,
    internal_reason,
    log,
    run_guarded,
    settle_poison,
)
from orch_serv.transport.wiresafe import fit_short, wire_safe_headers


async def deliver(
    message: Delivery,
    handler: DeliveryHandler,
    poison: Poison,
    republish: RawPublish,
    *,
    queue: str,
) -> None:
    """Hand one delivered AMQP message of ``queue`` to ``handler``, settling it whatever
    happens: undecodable properties are dead-lettered at once; a batch is split and each
    element guarded on its own; an element given back is re-published through
    ``republish`` (straight to the broker, never batched again)."""
    try:
        undecodable = message.headers.get(HEADER_UNDECODABLE)
        if undecodable is not None:
            log.warning("message_dead_lettered", queue=queue, reason=str(undecodable))
            await settle_poison(message, str(undecodable), poison)
            return
        parts = split_batch(message.body) if HEADER_BATCH in message.headers else None
        if not parts:
            await run_guarded(handler, message, poison)
            return
        routing_key = message.routing_key
        headers = wire_safe_headers(element_headers(message.headers))

        async def give_back(body: bytes, message_id: str | None) -> None:
            again = {**headers, HEADER_REDELIVERED: 1}
            await republish(routing_key, body, fit_short(message_id) or "", again, None)

        state = BatchState(len(parts), message.ack, give_back, message.reject)
        shared = element_headers(message.headers)  # one copy for the batch: read-only
        await asyncio.gather(
            *(
                run_guarded(handler, ElementDelivery(message, state, part, i, shared), poison)
                for i, part in enumerate(parts)
            )
        )
    except Exception as exc:  # the batch machinery itself failed: settle the message
        log.error("delivery_failed", queue=queue, exc_info=True)
        if not message.settled:
            await settle_poison(message, internal_reason(exc), poison)


class BatchState:
    """Settles the AMQP message of a batch once all of its elements are settled.

    An element that could not even be dead-lettered on its own is *rejected*: once every
    element is settled, the whole AMQP message is then rejected instead of acked, so the
    broker moves the batch (every element) to the dead-letter exchange rather than losing
    that element.
    """

    def __init__(
        self,
        size: int,
        ack: Callable[[], Awaitable[None]],
        republish: Callable[[bytes, str | None], Awaitable[None]],
        reject: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._left = size
        self._ack = ack
        self._republish = republish
        self._reject = reject
        self._rejected = False
        self._lock = asyncio.Lock()

    async def settle(
        self,
        body: bytes,
        message_id: str | Callable[[], str | None] | None,
        *,
        requeue: bool,
        reject: bool = False,
    ) -> None:
        """One element is done (or, with ``requeue``, given back; with ``reject``, refused).
        ``message_id`` (or a function that finds it) is needed only to give it back."""
        if requeue:
            await self._republish(body, message_id() if callable(message_id) else message_id)
        async with self._lock:
            if self._left <= 0:
                raise TransportError("batch element settled twice")
            self._left -= 1
            self._rejected = self._rejected or reject
            if self._left == 0:
                if self._rejected and self._reject is not None:
                    await self._reject()
                else:
                    await self._ack()


class ElementDelivery:
    """One envelope of a batch, delivered and settled like a message of its own."""

    __slots__ = ("_body", "_headers", "_index", "_message_id", "_parent", "_settled", "_state")

    def __init__(
        self,
        parent: Delivery,
        state: BatchState,
        body: bytes,
        index: int,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        self._parent = parent
        self._state = state
        self._body = body
        self._index = index
        # shared by the elements of a batch (nobody writes it): made once per batch
        self._headers = element_headers(parent.headers) if headers is None else headers
        self._message_id: str | None = None
        self._settled = False

    @property
    def body(self) -> bytes:
        """This element's envelope."""
        return self._body

    @property
    def headers(self) -> Mapping[str, Any]:
        """The batch's headers (without the batch marker)."""
        return self._headers

    @property
    def redelivered(self) -> bool:
        """The batch was delivered before."""
        return bool(self._parent.redelivered) or bool(self._headers.get(HEADER_REDELIVERED))

    @property
    def routing_key(self) -> str:
        """The batch's routing key."""
        return str(self._parent.routing_key)

    @property
    def message_id(self) -> str | None:
        """The envelope's own message id (None when the element is not a JSON object)."""
        if self._message_id is None:
            try:
                found = orjson.loads(self._body).get("message_id")
                self._message_id = found if isinstance(found, str) else ""
            except (orjson.JSONDecodeError, AttributeError, TypeError, RecursionError):
                self._message_id = ""
        return self._message_id or None

    @property
    def kind(self) -> str | None:
        """Unknown at this level (the envelope says)."""
        return None

    @property
    def settled(self) -> bool:
        """True once this element was acked, given back or rejected."""
        return self._settled

    async def _settle(self, *, requeue: bool = False, reject: bool = False) -> None:
        if self._settled:
            raise TransportError("batch element settled twice")
        self._settled = True
        # the id is looked up (a parse of the element) only if the element is given back
        await self._state.settle(self._body, self._find_message_id, requeue=requeue, reject=reject)

    def _find_message_id(self) -> str | None:
        return self.message_id

    async def ack(self) -> None:
        """This element is done."""
        await self._settle()

    async def requeue(self) -> None:
        """Give this element back: re-published on its own, flagged redelivered."""
        await self._settle(requeue=True)

    async def reject(self) -> None:
        """Refuse this element: the batch is rejected to the dead-letter exchange once all of
        its elements are settled (see :class:`BatchState`)."""
        await self._settle(reject=True)
