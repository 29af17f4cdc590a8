"""Batching for the RabbitMQ transport: fewer, larger AMQP messages under load.

Publishes to one routing key made in the same turn of the event loop travel as ONE
persistent, confirmed AMQP message whose body is a JSON array of envelopes (header
``x-orch-serv-batch: N``); a lone publish stays a plain message, so at low load nothing
changes on the wire. On the consuming side a batch is split back into one delivery per
envelope, each settled on its own: the AMQP message is acked once every element is acked or
dead-lettered; an element given back (requeue) is re-published on its own, flagged
``x-orch-serv-redelivered``, before the batch is acked. So per element the semantics are
exactly those of a single message, while RabbitMQ handles one message per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from orch_serv.constants import HEADER_BATCH, HEADER_REDELIVERED
from orch_serv.exceptions import TransportError

#: (routing key, body, message id, headers, kind) -> awaits the confirm
RawPublish = Callable[[str, bytes, str, Mapping[str, Any] | None, str | None], Awaitable[None]]


@dataclass(slots=True)
class _Pending:
    body: bytes
    message_id: str
    headers: Mapping[str, Any] | None
    kind: str | None
    future: asyncio.Future[None]


class PublishBatcher:
    """Coalesces concurrent publishes per routing key into batch messages."""

    def __init__(
        self, publish: RawPublish, *, max_batch: int = 64, max_bytes: int = 1 << 20
    ) -> None:
        self._publish = publish
        self._max_batch = max_batch
        self._max_bytes = max_bytes
        self._bytes: dict[str, int] = {}
        self._pending: dict[str, list[_Pending]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, Any] | None,
        kind: str | None,
    ) -> None:
        """Publish (alone or in a batch) and return once the broker confirmed it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._bytes.get(routing_key, 0) + len(body) > self._max_bytes:
            self._flush(routing_key)  # a batch stays well under RabbitMQ's message size limit
        queue = self._pending.setdefault(routing_key, [])
        queue.append(_Pending(body, message_id, headers, kind, future))
        self._bytes[routing_key] = self._bytes.get(routing_key, 0) + len(body)
        if len(queue) == 1:
            loop.call_soon(self._flush, routing_key)
        elif len(queue) >= self._max_batch:
            self._flush(routing_key)
        await future

    def _flush(self, routing_key: str) -> None:
        self._bytes.pop(routing_key, None)
        items = self._pending.pop(routing_key, [])
        if items:
            task = asyncio.create_task(self._send(routing_key, items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, routing_key: str, items: list[_Pending]) -> None:
        try:
            if len(items) == 1:
                one = items[0]
                await self._publish(routing_key, one.body, one.message_id, one.headers, one.kind)
            else:
                body = b"[" + b",".join(i.body for i in items) + b"]"
                headers = dict(items[0].headers or {})
                headers[HEADER_BATCH] = len(items)
                batch_id = f"batch:{items[0].message_id}:{len(items)}"
                await self._publish(routing_key, body, batch_id, headers, "batch")
        except BaseException as exc:
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for item in items:
            if not item.future.done():
                item.future.set_result(None)


def split_batch(body: bytes) -> list[bytes] | None:
    """The envelopes of a batch body, each re-encoded; None if it is not a JSON array."""
    try:
        elements = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(elements, list):
        return None
    return [orjson.dumps(e) for e in elements]


class BatchState:
    """Settles the AMQP message of a batch once all of its elements are settled."""

    def __init__(
        self,
        size: int,
        ack: Callable[[], Awaitable[None]],
        republish: Callable[[bytes, str | None], Awaitable[None]],
    ) -> None:
        self._left = size
        self._ack = ack
        self._republish = republish
        self._lock = asyncio.Lock()

    async def settle(self, body: bytes, message_id: str | None, *, requeue: bool) -> None:
        """One element is done (or, with ``requeue``, given back)."""
        if requeue:
            await self._republish(body, message_id)
        async with self._lock:
            if self._left <= 0:
                raise TransportError("batch element settled twice")
            self._left -= 1
            if self._left == 0:
                await self._ack()


class ElementDelivery:
    """One envelope of a batch, delivered and settled like a message of its own."""

    __slots__ = ("_body", "_headers", "_index", "_message_id", "_parent", "_state")

    def __init__(self, parent: Any, state: BatchState, body: bytes, index: int) -> None:
        self._parent = parent
        self._state = state
        self._body = body
        self._index = index
        headers = {k: v for k, v in parent.headers.items() if k != HEADER_BATCH}
        self._headers = headers
        self._message_id: str | None = None

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
        """The envelope's own message id."""
        if self._message_id is None:
            try:
                self._message_id = str(orjson.loads(self._body).get("message_id") or "")
            except (orjson.JSONDecodeError, AttributeError):
                self._message_id = ""
        return self._message_id or None

    @property
    def kind(self) -> str | None:
        """Unknown at this level (the envelope says)."""
        return None

    async def ack(self) -> None:
        """This element is done."""
        await self._state.settle(self._body, self.message_id, requeue=False)

    async def requeue(self) -> None:
        """Give this element back: re-published on its own, flagged redelivered."""
        await self._state.settle(self._body, self.message_id, requeue=True)
