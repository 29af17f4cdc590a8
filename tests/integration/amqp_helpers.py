"""Raw RabbitMQ access for tests that must handle a message the way a foreign or broken
peer would: take one off a queue, look at queue depths, publish bytes as they are."""

from __future__ import annotations

from typing import Any

import aio_pika
import orjson

from orch_serv.constants import HEADER_BATCH, HEADER_PROTOCOL, HEADER_REASON, PROTOCOL_VERSION
from tests.conftest import AMQP_URL, eventually


async def queue_depth(queue: str) -> int:
    """Messages ready in ``queue`` (not counting unacked ones)."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        return int(count or 0)
    finally:
        await connection.close()


async def take_message(queue: str, timeout: float = 30.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait for a message in ``queue``, take it off (acked) and return (envelope, headers)."""

    async def get() -> aio_pika.abc.AbstractIncomingMessage | None:
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            message = await declared.get(no_ack=True, fail=False)
            return message
        finally:
            await connection.close()

    message = await eventually(get, timeout=timeout)
    headers = dict(message.headers or {})
    assert HEADER_BATCH not in headers, "expected a single message, got a batch"
    return orjson.loads(message.body), headers


def raw_headers(kind: str) -> dict[str, Any]:
    """The AMQP headers an envelope of ``kind`` travels with."""
    return {HEADER_PROTOCOL: PROTOCOL_VERSION, "x-orch-serv-kind": kind}


async def dead_letters(namespace: str, limit: int = 100) -> dict[str, str]:
    """message id -> reason of the messages in ``<namespace>.dead`` (left in the queue)."""
    connection = await aio_pika.connect(AMQP_URL)
    found: dict[str, str] = {}
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(f"{namespace}.dead", passive=True)
        for _ in range(limit):
            message = await declared.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = message.headers or {}
            found[str(message.message_id)] = str(headers.get(HEADER_REASON, ""))
    finally:
        await connection.close()  # unacked: every message goes back to the queue
    return found
