"""Batching, a feature of both transports: fewer, larger AMQP messages under load.

Publishes to one routing key made in the same turn of the event loop travel as ONE
persistent, confirmed AMQP message whose body is a JSON array of envelopes (header
``x-orch-serv-batch: N``, :mod:`orch_serv.transport.batch_wire`); a lone publish stays a
plain message, so at low load nothing changes on the wire. On the consuming side a batch is
split back into one delivery per envelope, each settled on its own
(:mod:`orch_serv.transport.batch_delivery`): the AMQP message is acked once every element is
acked or dead-lettered; an element given back (requeue) is re-published on its own, flagged
``x-orch-serv-redelivered``, before the batch is acked. So per element the semantics are
exactly those of a single message, while the broker handles one message per batch.

:class:`PublishBatcher` (here) is the publishing side; :class:`~orch_serv.transport.rabbit.\
RabbitTransport` and :class:`~orch_serv.transport.memory.MemoryTransport` both publish through
one and consume through :func:`~orch_serv.transport.batch_delivery.deliver`, so the embedded
broker, the contract suite and the test kit run the same batching code as RabbitMQ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orch_serv.transport.batch_delivery import BatchState, ElementDelivery, deliver
from orch_serv.transport.batch_wire import (
    BATCH_KIND,
    RawPublish,
    batch_headers,
    batch_message_id,
    join_batch,
    split_batch,
    split_raw,
)

__all__ = [
    "BatchState",
    "ElementDelivery",
    "PublishBatcher",
    "RawPublish",
    "deliver",
    "split_batch",
    "split_raw",
]


@dataclass(slots=True)
class _Pending:
    body: bytes
    message_id: str
    headers: Mapping[str, Any] | None
    kind: str | None
    future: asyncio.Future[None]


class PublishBatcher:
    """Coalesces concurrent publishes per routing key into batch messages.

    At most ``max_batch`` envelopes (and about ``max_bytes`` of them) share one message; a
    full batch leaves at once, the rest at the end of the loop turn. ``max_batch=1`` never
    batches: every publish is a plain message of its own.
    """

    def __init__(
        self, publish: RawPublish, *, max_batch: int = 64, max_bytes: int = 1 << 20
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
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
        if len(queue) >= self._max_batch:  # full (with max_batch=1: every publish)
            self._flush(routing_key)
        elif len(queue) == 1:
            loop.call_soon(self._flush, routing_key)
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
                body = join_batch([i.body for i in items])
                headers = batch_headers(items[0].headers, len(items))
                batch_id = batch_message_id(items[0].message_id, len(items))
                await self._publish(routing_key, body, batch_id, headers, BATCH_KIND)
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
