"""Runs on the local 3-node RabbitMQ cluster with quorum queues, connected through the list
of its nodes: when the node the processes use is stopped, they fail over to the next node
and new runs succeed (the quorum queues keep their messages on the other two nodes). Redis
is the default single server (tests/cluster/test_redis_cluster.py runs on both clusters)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import aio_pika
import pytest
import pytest_asyncio

from orch_serv.constants import RunState
from orch_serv.settings import Settings
from orch_serv.transport.failover import FailoverConnection
from orch_serv.transport.rabbit import RabbitTransport
from orch_serv.urls import split_urls
from tests.apps.pipeline import orchestrator
from tests.cluster.conftest import harness
from tests.conftest import REDIS_URL, cleanup, start_once_back, unique_name

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.timeout(400)]


@pytest_asyncio.fixture
async def on_cluster(cluster: dict[str, str]) -> AsyncIterator[Settings]:
    """Settings naming the RabbitMQ cluster's nodes, quorum queues, a namespace of its own."""
    name = unique_name("clrmq")
    nodes = cluster["ORCH_SERV_CLUSTER_AMQP_URLS"]
    yield Settings(
        amqp_url=nodes,
        redis_url=REDIS_URL,
        namespace=name,
        key_prefix=name,
        quorum_queues=True,
        shutdown_grace_seconds=5,
        log_level="WARNING",
    )
    await cleanup(name, name, amqp_url=split_urls(nodes)[1])


@pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning")
async def test_runs_go_on_when_the_node_in_use_stops(on_cluster: Settings) -> None:
    stopped: str | None = None
    try:
        async with orchestrator.run(on_cluster, with_services=True) as running:
            before = await running.start("pipeline", {"n": 1})
            assert (await running.wait(before, timeout=60)).state is RunState.SUCCEEDED
            transport = running.engine.transport
            assert isinstance(transport, RabbitTransport)
            connection = transport.connection
            assert isinstance(connection, FailoverConnection)
            in_use = connection.node
            stopped = str(in_use + 1)  # the harness lists node N as the N-th URL
            result = await asyncio.to_thread(harness, "node-stop", "rabbit", stopped)
            assert result.returncode == 0, result.stderr

            after = await start_once_back(running, {"n": 2}, timeout=120, interval=0.5)
            record = await running.wait(after, timeout=120)
            assert connection.node != in_use
        assert record.state is RunState.SUCCEEDED
        assert record.result == {"n": 2, "trail": ["one", "two", "three"]}
    finally:
        if stopped is not None:
            started = await asyncio.to_thread(harness, "node-start", "rabbit", stopped)
            assert started.returncode == 0, started.stderr
        gc.collect()  # the dropped connection's StreamWriter (see the filter)


async def test_the_queues_are_quorum_queues(on_cluster: Settings) -> None:
    async with orchestrator.run(on_cluster, with_services=True):
        url = split_urls(on_cluster.amqp_url or "")[0]
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            queue = f"{on_cluster.namespace}.orchestrator"
            declared = await channel.declare_queue(queue, passive=True)
            # redeclaring as classic is refused by the broker: it is a quorum queue
            other = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
                await other.declare_queue(
                    queue, durable=True, arguments={"x-queue-type": "classic"}
                )
            assert declared.name == queue
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
