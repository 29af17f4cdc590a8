"""Shared fixtures: unique namespaces and key prefixes per test, real RabbitMQ and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest
import redis.asyncio as aioredis

from orch_serv.backends import open_backends
from orch_serv.exceptions import OrchServError
from orch_serv.orchestrator.client import Client
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport

#: The test kit's `orch_serv_kit` fixture (tests/flows/ use it, as a user's suite would).
pytest_plugins = ["orch_serv.testing"]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_name(stem: str = "t") -> str:
    """A namespace / key prefix no other test uses."""
    return f"{stem}_{uuid.uuid4().hex[:10]}"


async def cleanup(namespace: str, prefix: str, *, amqp_url: str = AMQP_URL) -> None:
    """Delete the queues, exchanges and keys a test created (never anything else), on the
    RabbitMQ of ``amqp_url``."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queues = [f"{namespace}.orchestrator", f"{namespace}.dead"] + [
            f"{namespace}.svc.{name}"
            for name in (
                "math",
                "validator",
                "transformer",
                "publisher",
                "other",
                "ghost",
                "work",
                "flaky",
                "shop",
                "nobody",
                "bench",
            )
        ]
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in (namespace, f"{namespace}.dlx", f"{namespace}.control"):
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()


@pytest.fixture
async def settings() -> AsyncIterator[Settings]:
    """Settings with a namespace and key prefix of this test's own."""
    name = unique_name()
    yield Settings(
        amqp_url=AMQP_URL,
        redis_url=REDIS_URL,
        namespace=name,
        key_prefix=name,
        shutdown_grace_seconds=5,
        log_level="WARNING",
    )
    await cleanup(name, name)


@pytest.fixture
async def backends(settings: Settings) -> AsyncIterator[tuple[RabbitTransport, RedisRunStore]]:
    """A connected transport (RabbitMQ: ``settings`` names an ``amqp://`` URL) and store."""
    async with open_backends(settings) as (transport, store):
        assert isinstance(transport, RabbitTransport)
        yield transport, store


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, interval: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy (a condition, not a fixed sleep)."""
    async with asyncio.timeout(timeout):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(interval)


async def start_once_back(
    client: Client,
    body: Any,
    *,
    flow: str = "pipeline",
    errors: tuple[type[BaseException], ...] = (OrchServError,),
    timeout: float = 60.0,
    interval: float = 0.2,
) -> str:
    """Start a run as soon as the backends take it again (after a dropped connection, a
    failover): the start is tried again while it raises one of ``errors``."""

    async def start() -> str | None:
        try:
            return await client.start(flow, body)
        except errors:
            return None  # still reconnecting / failing over

    run_id: str = await eventually(start, timeout=timeout, interval=interval)
    return run_id


@pytest.fixture(params=["embedded", "real"])
async def any_backends(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[tuple[Any, RedisRunStore]]:
    """The same behaviour tests on the embedded backends and on RabbitMQ + Redis."""
    if request.param == "embedded":
        url = f"memory://{uuid.uuid4().hex}"
        settings = settings.model_copy(update={"amqp_url": url, "redis_url": url})
    async with open_backends(settings) as pair:
        yield pair
