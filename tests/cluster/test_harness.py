"""scripts/cluster.sh: it forms a 3-master Redis Cluster (with replicas) and a 3-node
RabbitMQ cluster on loopback ports, both usable by clients, and stops them again.

Run with ``pytest -m cluster tests/cluster`` (``make cluster-test``); about a minute."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import aio_pika
import pytest
from redis.asyncio.cluster import RedisCluster

from tests.cluster.conftest import harness, urls

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(400)]


def test_start_is_idempotent_and_status_answers(cluster: dict[str, str]) -> None:
    again = harness("start")
    assert again.returncode == 0 and "already running" in again.stderr
    assert urls(again.stdout) == cluster
    assert harness("status").returncode == 0
    assert cluster["ORCH_SERV_CLUSTER_REDIS_URL"].startswith("redis+cluster://127.0.0.1:7101,")
    assert cluster["ORCH_SERV_CLUSTER_AMQP_URLS"].split(",")[0] == (
        "amqp://guest:guest@127.0.0.1:5701/"
    )


def test_rabbitmq_has_three_running_nodes(cluster: dict[str, str]) -> None:
    status = harness("ctl", "1", "cluster_status", "--formatter", "json")
    assert status.returncode == 0, status.stderr
    running = json.loads(status.stdout)["running_nodes"]
    assert sorted(running) == [f"rabbit-os{n}@localhost" for n in (1, 2, 3)]


async def test_redis_cluster_serves_keys_in_every_slot_range(cluster: dict[str, str]) -> None:
    first = cluster["ORCH_SERV_CLUSTER_REDIS_URL"].split(",")[0]
    client = RedisCluster.from_url(first.replace("redis+cluster://", "redis://"))
    try:
        info = await client.cluster_info()
        assert info["cluster_state"] == "ok"
        assert len(client.get_primaries()) == 3 and len(client.get_replicas()) == 3
        stem = uuid.uuid4().hex[:8]
        keys = [f"harness:{stem}:{i}" for i in range(30)]
        for i, key in enumerate(keys):
            await client.set(key, str(i), ex=60)
        for i, key in enumerate(keys):
            assert await client.get(key) == str(i).encode()
        owners = set()
        for key in keys:
            node = client.get_node_from_key(key)
            assert node is not None
            owners.add(node.name)
        assert len(owners) == 3  # the keys spread over every primary
        for key in keys:
            await client.delete(key)
    finally:
        await client.aclose()


async def test_a_quorum_queue_written_on_node_2_is_read_on_node_3(
    cluster: dict[str, str],
) -> None:
    urls = cluster["ORCH_SERV_CLUSTER_AMQP_URLS"].split(",")
    queue_name = f"harness.{uuid.uuid4().hex[:8]}"
    body = b"through the cluster"
    writer = await aio_pika.connect(urls[1])
    try:
        channel = await writer.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue_name,
        )
        reader = await aio_pika.connect(urls[2])
        try:
            read_channel = await reader.channel()
            read_queue = await read_channel.get_queue(queue_name)
            message = await read_queue.get(timeout=10, fail=True)
            assert message is not None and message.body == body
            await message.ack()
        finally:
            await reader.close()
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await writer.close()


def _poll(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``check()`` holds (a condition, polled), else fail."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{check.__doc__} did not happen in {timeout} s"
        time.sleep(0.5)


def _primaries() -> list[str]:
    return harness("primaries").stdout.split()


def test_a_stopped_redis_primary_fails_over_and_rejoins(cluster: dict[str, str]) -> None:
    before = _primaries()
    assert len(before) == 3
    victim = before[0]
    assert harness("node-stop", "redis", victim).returncode == 0

    def promoted() -> bool:
        """a replica promoted in the stopped primary's place"""
        now = _primaries()
        return victim not in now and len(now) == 3

    _poll(promoted)
    started = harness("node-start", "redis", victim)
    assert started.returncode == 0, started.stderr

    def rejoined() -> bool:
        """the old primary back, as a replica, and the cluster whole"""
        return harness("status").returncode == 0

    _poll(rejoined)
    assert victim not in _primaries()


def test_a_stopped_rabbitmq_node_leaves_its_quorum_queue_usable(
    cluster: dict[str, str],
) -> None:
    urls = cluster["ORCH_SERV_CLUSTER_AMQP_URLS"].split(",")
    assert harness("node-stop", "rabbit", "3").returncode == 0
    try:
        status = json.loads(harness("ctl", "1", "cluster_status", "--formatter", "json").stdout)
        assert "rabbit-os3@localhost" not in status["running_nodes"]

        async def round_trip() -> bytes:
            connection = await aio_pika.connect(urls[0])
            try:
                channel = await connection.channel(publisher_confirms=True)
                queue = await channel.declare_queue(
                    f"harness.{uuid.uuid4().hex[:8]}",
                    durable=True,
                    arguments={"x-queue-type": "quorum"},
                )
                await channel.default_exchange.publish(
                    aio_pika.Message(b"two of three"), routing_key=queue.name
                )
                message = await queue.get(timeout=10, fail=True)
                assert message is not None
                await message.ack()
                await queue.delete(if_unused=False, if_empty=False)
                return message.body
            finally:
                await connection.close()

        assert asyncio.run(round_trip()) == b"two of three"
    finally:
        assert harness("node-start", "rabbit", "3").returncode == 0
    _poll(lambda: harness("status").returncode == 0)
