"""What the chaos session sets up around the processes: their environment, waiting until
they serve, counting dead letters, and removing every key and queue of the session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import aio_pika
import redis.asyncio as aioredis
from aio_pika.exceptions import AMQPError
from redis.asyncio.cluster import RedisCluster
from yarl import URL

from chaos.app import FLOW, SERVICE
from orch_serv.store.base import RunStore
from orch_serv.transport.base import Topology
from orch_serv.urls import is_cluster_url

ROOT = Path(__file__).resolve().parents[1]


def process_env(amqp_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    """The environment of the orchestrator and service processes: their own namespace
    (queue names) and Redis key prefix, both ``prefix``."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "ORCH_SERV_AMQP_URL": amqp_url,
        "ORCH_SERV_REDIS_URL": redis_url,
        "ORCH_SERV_NAMESPACE": prefix,
        "ORCH_SERV_KEY_PREFIX": prefix,
        "ORCH_SERV_LOG_LEVEL": "WARNING",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
    }


def through_proxy(amqp_url: str, port: int) -> str:
    """``amqp_url`` with its host and port replaced by the proxy's (127.0.0.1:``port``)."""
    return str(URL(amqp_url).with_host("127.0.0.1").with_port(port))


def broker_address(amqp_url: str) -> tuple[str, int]:
    """(host, port) of a RabbitMQ URL."""
    url = URL(amqp_url)
    if url.scheme not in ("amqp", "amqps") or not url.host:
        raise ValueError(f"not a RabbitMQ URL: {amqp_url!r} (amqp://user:pass@host:port/vhost)")
    return url.host, url.port or (5671 if url.scheme == "amqps" else 5672)


async def connect_amqp(amqp_url: str) -> aio_pika.abc.AbstractConnection:
    """A connection to the first node of ``amqp_url`` (a comma-separated list) that answers."""
    urls = [u.strip() for u in amqp_url.split(",") if u.strip()]
    for url in urls[:-1]:
        with contextlib.suppress(AMQPError, OSError):
            return await aio_pika.connect(url)
    return await aio_pika.connect(urls[-1])


async def consumers(connection: aio_pika.abc.AbstractConnection, queue: str) -> int:
    """Consumers of ``queue`` (0 when it does not exist yet)."""
    try:
        async with connection.channel() as channel:
            declared = await channel.declare_queue(queue, passive=True)
    except AMQPError:
        return 0
    return int(declared.declaration_result.consumer_count or 0)


async def wait_ready(
    amqp_url: str, store: RunStore, prefix: str, orchestrators: int, services: int, timeout: float
) -> None:
    """Wait until the flow is registered and every process consumes its queue."""
    topology = Topology(prefix)
    deadline = time.monotonic() + timeout
    connection = await connect_amqp(amqp_url)
    try:
        while time.monotonic() < deadline:
            if (
                await store.get_spec("flow", FLOW) is not None
                and await consumers(connection, topology.orchestrator_queue) >= orchestrators
                and await consumers(connection, topology.service_queue(SERVICE)) >= services
            ):
                return
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    raise TimeoutError(f"the chaos processes did not all come up within {timeout:.0f} s")


async def dead_letters(amqp_url: str, prefix: str) -> int:
    """Messages waiting in the session's dead-letter queue."""
    connection = await connect_amqp(amqp_url)
    try:
        async with connection.channel() as channel:
            queue = await channel.declare_queue(Topology(prefix).dead_letter_queue, passive=True)
            return int(queue.declaration_result.message_count or 0)
    except AMQPError:
        return 0
    finally:
        await connection.close()


async def cleanup(amqp_url: str, redis_url: str, prefix: str) -> int:
    """Delete the session's Redis keys (``prefix:*`` only: another session's prefix may
    start with this one) and its queues and exchanges; how many keys were deleted."""
    deleted = 0
    if is_cluster_url(redis_url):  # a Redis Cluster: every primary, key by key
        first = redis_url.split(",")[0].replace("redis+cluster://", "redis://", 1)
        cluster = RedisCluster.from_url(first.replace("rediss+cluster://", "rediss://", 1))
        try:
            async for key in cluster.scan_iter(match=f"{prefix}:*", count=1000):
                deleted += await cluster.unlink(key)
        finally:
            await cluster.aclose()
    else:
        redis = aioredis.Redis.from_url(redis_url)
        try:
            batch: list[bytes] = []
            async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += await redis.unlink(*batch)
                    batch = []
            if batch:
                deleted += await redis.unlink(*batch)
        finally:
            await redis.aclose()
    topology = Topology(prefix)
    connection = await connect_amqp(amqp_url)
    try:
        async with connection.channel() as channel:
            for queue in (
                topology.orchestrator_queue,
                topology.dead_letter_queue,
                topology.service_queue(SERVICE),
            ):
                await channel.queue_delete(queue)
            for exchange in (
                topology.exchange,
                topology.dead_letter_exchange,
                topology.control_exchange,
            ):
                with contextlib.suppress(AMQPError):
                    await channel.exchange_delete(exchange)
    finally:
        await connection.close()
    return deleted
