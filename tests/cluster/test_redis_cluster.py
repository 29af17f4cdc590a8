"""The example pipeline, unchanged, on both local clusters at once: the Redis Cluster (runs
spread over its primaries by shard) and the 3-node RabbitMQ cluster with quorum queues; then
with a Redis primary stopped under running flows (its replica is promoted and the runs go
on)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio.cluster import RedisCluster

from orch_serv.constants import EventKind, RunState
from orch_serv.exceptions import OrchServError
from orch_serv.settings import Settings
from orch_serv.store.keys import Keys
from orch_serv.urls import split_urls
from tests.apps.pipeline import orchestrator
from tests.cluster.cluster_stores import delete_prefix
from tests.cluster.conftest import harness
from tests.conftest import cleanup, eventually, start_once_back, unique_name

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.timeout(400)]

RESULT = ["one", "two", "three"]


@pytest_asyncio.fixture
async def on_clusters(cluster: dict[str, str]) -> AsyncIterator[Settings]:
    """Settings naming both clusters, quorum queues, a namespace and key prefix of its own."""
    name = unique_name("clboth")
    nodes, redis_url = (
        cluster["ORCH_SERV_CLUSTER_AMQP_URLS"],
        cluster["ORCH_SERV_CLUSTER_REDIS_URL"],
    )
    yield Settings(
        amqp_url=nodes,
        redis_url=redis_url,
        namespace=name,
        key_prefix=name,
        quorum_queues=True,
        shutdown_grace_seconds=5,
        log_level="WARNING",
    )
    await cleanup(name, "nothing-on-the-default-redis", amqp_url=split_urls(nodes)[0])
    await delete_prefix(redis_url, name)


def _client(url: str) -> RedisCluster:
    return RedisCluster.from_url(url.replace("redis+cluster://", "redis://").split(",")[0])


async def test_the_pipeline_runs_on_both_clusters_with_runs_on_every_primary(
    on_clusters: Settings,
) -> None:
    async with orchestrator.run(on_clusters, with_services=True) as running:
        run_ids = [await running.start("pipeline", {"n": n}) for n in range(48)]
        records = [await running.wait(run_id, timeout=60) for run_id in run_ids]
        shards = running.engine.timers.shards
        assert shards is not None and shards.owned == frozenset(range(16))  # the only replica
    assert {r.state for r in records} == {RunState.SUCCEEDED}
    assert all(r.result == {"n": n, "trail": RESULT} for n, r in enumerate(records))
    keys = Keys(on_clusters.key_prefix)
    client = _client(on_clusters.redis_url or "")
    try:
        await client.initialize()
        nodes = set()
        for run_id in run_ids:
            node = client.get_node_from_key(keys.run(run_id))
            assert node is not None and await client.exists(keys.run(run_id)) == 1
            nodes.add(node.name)
    finally:
        await client.aclose()
    assert len(nodes) == 3  # 48 runs over 16 shards land on every primary


# redis-py's cluster client drops the node objects of a map it re-reads after a failover
# without closing their pooled connections: their sockets are collected unclosed.
@pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning")
async def test_runs_go_on_when_a_redis_primary_stops(on_clusters: Settings) -> None:
    primaries = harness("primaries")
    assert primaries.returncode == 0, primaries.stderr
    victim = primaries.stdout.split()[0]
    stopped = False
    try:
        async with orchestrator.run(on_clusters, with_services=True) as running:
            before = [await running.start("pipeline", {"n": n}) for n in range(20)]
            result = await asyncio.to_thread(harness, "node-stop", "redis", victim)
            assert result.returncode == 0, result.stderr
            stopped = True
            during = [
                await start_once_back(running, {"n": 100 + n}, timeout=120, interval=0.5)
                for n in range(20)
            ]
            records = [await running.wait(r, timeout=120) for r in before + during]

            async def promoted() -> bool:
                answer = await asyncio.to_thread(harness, "primaries")
                return len(answer.stdout.split()) == 3 and victim not in answer.stdout.split()

            assert await eventually(promoted, timeout=60, interval=0.5)

            # the promoted replica has no scripts cached: the shard leases and timer claims,
            # script calls on every shard, work again (by EVAL until the slot map is re-read)
            async def scripts_run() -> bool:
                shards = running.engine.timers.shards
                assert shards is not None
                try:
                    await shards.refresh()
                    await running.store.claim_timers(0.0, 1.0, 1)
                except OrchServError:
                    return False
                return shards.owned == frozenset(range(16))

            assert await eventually(scripts_run, timeout=60, interval=0.5)
            histories = [await running.store.get_events(r.run_id) for r in records]
    finally:
        if stopped:
            started = await asyncio.to_thread(harness, "node-start", "redis", victim)
            assert started.returncode == 0, started.stderr

            async def healed() -> bool:  # the old primary rejoined as a replica
                return (await asyncio.to_thread(harness, "status")).returncode == 0

            assert await eventually(healed, timeout=60, interval=0.5)
        gc.collect()  # the dropped nodes' sockets, here under the filter (see above)
    assert [r.state for r in records] == [RunState.SUCCEEDED] * 40
    assert all(r.result is not None and r.result["trail"] == RESULT for r in records)
    for events in histories:  # every step completed once, however often it was redelivered
        completed = [e.step for e in events if e.kind is EventKind.STEP_COMPLETED]
        assert completed == [0, 1, 2]
