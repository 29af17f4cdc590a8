"""Batching of envelopes per AMQP message: limits, the wire form, and splitting."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from orch_serv.constants import HEADER_BATCH
from orch_serv.transport.batching import PublishBatcher, split_batch


async def test_concurrent_publishes_share_messages_within_the_limits() -> None:
    sent: list[tuple[bytes, Mapping[str, Any] | None, str | None]] = []

    async def publish(
        key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, Any] | None,
        kind: str | None,
    ) -> None:
        sent.append((body, headers, kind))

    batcher = PublishBatcher(publish, max_batch=3, max_bytes=20)
    bodies = [b'{"n":%d}' % i for i in range(7)]  # 7 bytes each: two fit in 20 bytes
    await asyncio.gather(
        *(batcher.publish("k", b, f"m{i}", None, None) for i, b in enumerate(bodies))
    )
    sizes = [len(split_batch(body) or [body]) if kind == "batch" else 1 for body, _, kind in sent]
    assert sizes == [2, 2, 2, 1]
    assert all(h is not None and h[HEADER_BATCH] == 2 for _, h, kind in sent if kind == "batch")
    elements = [
        e
        for body, _, kind in sent
        for e in (split_batch(body) if kind == "batch" else [body]) or []
    ]
    assert [orjson.loads(e) for e in elements] == [{"n": i} for i in range(7)]


async def test_a_lone_publish_stays_a_plain_message() -> None:
    sent: list[tuple[bytes, str | None]] = []

    async def publish(
        key: str, body: bytes, message_id: str, headers: Any, kind: str | None
    ) -> None:
        sent.append((body, kind))

    await PublishBatcher(publish).publish("k", b'{"a":1}', "m1", None, "command")
    assert sent == [(b'{"a":1}', "command")]


async def test_a_failed_batch_fails_every_publisher() -> None:
    async def publish(
        key: str, body: bytes, message_id: str, headers: Any, kind: str | None
    ) -> None:
        raise ConnectionError("broker went away")

    batcher = PublishBatcher(publish)
    results = await asyncio.gather(
        *(batcher.publish("k", b"{}", f"m{i}", None, None) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, ConnectionError) for r in results)


def test_split_batch_rejects_what_is_not_an_array() -> None:
    assert split_batch(b'[{"a":1},{"b":2}]') == [b'{"a":1}', b'{"b":2}']
    assert split_batch(b'{"a":1}') is None
    assert split_batch(b"not json") is None
