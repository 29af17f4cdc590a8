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
import re
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
    """The envelopes of a batch body; None if it is not a JSON array.

    The fast path parses the array with orjson and re-encodes each element. When that fails
    (one element nested past orjson's recursion limits, not UTF-8, an integer beyond 64 bits,
    broken JSON inside one element...), the array is split on its top-level commas instead,
    each element kept byte for byte: every element is then decoded, and dead-lettered with its
    own reason if need be, on its own, while the good elements of the batch are processed.
    """
    try:
        elements = orjson.loads(body)
        if not isinstance(elements, list):
            return None
        return [orjson.dumps(e) for e in elements]
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError, RecursionError):
        return split_raw(body)


#: A JSON string (escapes included), or one of the characters that shape an array.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


def split_raw(body: bytes) -> list[bytes] | None:
    """The top-level elements of a JSON array as the exact bytes they were sent as (nesting
    is tracked, strings skipped, nothing else is parsed); None unless ``body`` is one
    balanced array of non-empty elements."""
    depth, start = 0, -1
    parts: list[bytes] = []
    for match in _TOKEN.finditer(body):
        char = body[match.start()]
        if char == 0x22:  # a string: whatever it holds does not count
            continue
        if char in _OPEN:
            if depth == 0:
                if start >= 0 or char != 0x5B or body[: match.start()].strip():
                    return None
                start = match.end()
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                last = body[start : match.start()].strip()
                if char != 0x5D or body[match.end() :].strip() or (parts and not last):
                    return None
                return [*parts, last] if last else parts
        elif depth == 1:  # a comma between two elements
            element = body[start : match.start()].strip()
            if not element:
                return None
            parts.append(element)
            start = match.end()
    return None


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
        self, body: bytes, message_id: str | None, *, requeue: bool, reject: bool = False
    ) -> None:
        """One element is done (or, with ``requeue``, given back; with ``reject``, refused)."""
        if requeue:
            await self._republish(body, message_id)
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

    def __init__(self, parent: Any, state: BatchState, body: bytes, index: int) -> None:
        self._parent = parent
        self._state = state
        self._body = body
        self._index = index
        headers = {k: v for k, v in parent.headers.items() if k != HEADER_BATCH}
        self._headers = headers
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
        await self._state.settle(self._body, self.message_id, requeue=requeue, reject=reject)

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
