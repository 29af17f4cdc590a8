"""Batching of envelopes per AMQP message: limits, the wire form, and splitting."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from orch_serv.constants import HEADER_BATCH
from orch_serv.transport.batch_wire import batch_message_id
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


async def test_max_batch_one_never_batches() -> None:
    sent: list[tuple[str, str | None]] = []

    async def publish(
        key: str, body: bytes, message_id: str, headers: Any, kind: str | None
    ) -> None:
        sent.append((message_id, kind))

    batcher = PublishBatcher(publish, max_batch=1)
    await asyncio.gather(*(batcher.publish("k", b"{}", f"m{i}", None, None) for i in range(5)))
    assert sent == [(f"m{i}", None) for i in range(5)]  # five plain messages, in order


def test_max_batch_below_one_is_refused() -> None:
    async def publish(*args: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        PublishBatcher(publish, max_batch=0)


def test_a_batch_id_always_fits_an_amqp_short_string() -> None:
    assert batch_message_id("m1", 3) == "batch:m1:3"
    long = batch_message_id("x" * 250, 3)
    assert re.fullmatch(r"batch:[0-9a-f]{32}:3", long)
    assert re.fullmatch(r"batch:[0-9a-f]{32}:2", batch_message_id("\ud800", 2))
