"""orch_serv under the benchmark: one orchestrator process and one service process (real
RabbitMQ and Redis, persistent messages, publisher confirms); this process drives the runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aio_pika
import psutil
from redis.asyncio.cluster import RedisCluster

from bench.common import AMQP_NODE, AMQP_URL, REDIS_URL, Result, cpu_seconds, server_processes
from orch_serv.backends import open_backends
from orch_serv.constants import EventKind, RunState
from orch_serv.orchestrator.client import Client
from orch_serv.settings import Settings
from orch_serv.store.cluster import is_cluster, node_client

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "orch-serv")
APP = "bench.orch_app:orchestrator"


class Completions:
    """One subscription to the 'finished' channel, resolving a future per run."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        store = self.client.store
        redis = store.redis  # type: ignore[attr-defined]
        if is_cluster(redis):  # the cluster forwards every PUBLISH to every node
            redis = node_client(redis)
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(store.keys.finished_channel)  # type: ignore[attr-defined]
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for message in self._pubsub.listen():
            if message.get("type") != "message":
                continue
            future = self.waiting.pop(str(message["data"]), None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    def expect(self, run_id: str) -> asyncio.Future[float]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[run_id] = future
        return future

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self._pubsub.aclose()


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "ORCH_SERV_AMQP_URL": AMQP_URL,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_NAMESPACE": settings.namespace,
        "ORCH_SERV_KEY_PREFIX": settings.key_prefix,
        "ORCH_SERV_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


async def _consumers(queue: str) -> int:
    connection = await aio_pika.connect(AMQP_NODE)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.consumer_count or 0)


async def _ready(client: Client, settings: Settings, deadline: float) -> None:
    while time.monotonic() < deadline:
        if await client.store.get_spec("flow", "three") is not None:
            try:
                if await _consumers(f"{settings.namespace}.svc.bench") > 0:
                    return
            except aio_pika.exceptions.AMQPException:
                pass
        await asyncio.sleep(0.1)
    raise TimeoutError("orch_serv processes did not come up")


async def _drive(client: Client, flows: int, inflight: int) -> tuple[list[str], list[float]]:
    completions = Completions(client)
    await completions.start()
    slots = asyncio.Semaphore(inflight)
    latencies: list[float] = []
    run_ids: list[str] = []

    async def one(i: int) -> None:
        async with slots:
            started = time.perf_counter()
            run_id = await client.start("three", {"n": i}, key=None)
            future = completions.expect(run_id)
            record = await client.store.get_run(run_id)
            if record is None or not record.done:
                finished = await asyncio.wait_for(future, 120)
            else:
                finished = time.perf_counter()
            latencies.append((finished - started) * 1000)
            run_ids.append(run_id)

    await asyncio.gather(*(one(i) for i in range(flows)))
    await completions.stop()
    return run_ids, latencies


async def _step_latencies(client: Client, run_ids: list[str]) -> list[float]:
    latencies: list[float] = []
    for run_id in run_ids[:2000]:
        dispatched: dict[int, float] = {}
        for event in await client.store.get_events(run_id):
            if event.kind is EventKind.STEP_DISPATCHED and event.step is not None:
                dispatched[event.step] = event.time
            elif event.kind is EventKind.STEP_COMPLETED and event.step in dispatched:
                latencies.append((event.time - dispatched[event.step]) * 1000)
    return latencies


async def _prefill(store: Any, run_ids: list[str], count: int) -> None:
    """Copy a real finished run ``count`` times (DUMP/RESTORE of its keys, index entries
    too), as if that many runs had finished and were retained."""
    redis, keys = store.redis, store.keys
    source = run_ids[0]
    run_dump = await redis.dump(keys.run(source))
    events_dump = await redis.dump(keys.events(source))
    assert run_dump is not None and events_dump is not None
    ttl_ms = store.retention_ms
    now = time.time()
    batch = 5_000
    for start in range(0, count, batch):
        pipe = redis.pipeline(transaction=False)
        ids = [f"prefill{start + i:08d}" for i in range(min(batch, count - start))]
        for rid in ids:
            pipe.restore(keys.run(rid), ttl_ms, run_dump, replace=True)
            pipe.restore(keys.events(rid), ttl_ms, events_dump, replace=True)
        for rid in ids:
            shard = keys.of_run(rid)
            pipe.zadd(shard.state_index("SUCCEEDED"), {rid: now})
            pipe.zadd(shard.flow_index("three"), {rid: now})
        await pipe.execute()


async def _used_memory(store: Any) -> int:
    if is_cluster(store.redis):  # every primary's, summed
        info = await store.redis.info("memory", target_nodes=RedisCluster.PRIMARIES)
        return sum(int(node["used_memory"]) for node in info.values())
    info = await store.redis.info("memory")
    return int(info["used_memory"])


async def measure(flows: int, inflight: int, namespace: str, *, prefill: int = 0) -> Result:
    settings = Settings(
        namespace=namespace, key_prefix=namespace, amqp_url=AMQP_URL, redis_url=REDIS_URL
    )
    env = _env(settings)
    profiled = os.environ.get("BENCH_PROFILE", "")  # orchestrator | service: pyinstrument

    def command(role: str) -> list[str]:
        if role == profiled:
            out = ROOT / "bench" / "results" / f"profile-{role}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            spy = str(Path(sys.executable).parent / "py-spy")
            return [
                spy,
                "record",
                "-f",
                "raw",
                "-o",
                str(out),
                "-r",
                "200",
                "--",
                sys.executable,
                "-m",
                "orch_serv",
                role,
                APP,
            ]
        return [CLI, role, APP]

    procs = {
        role: subprocess.Popen(command(role), cwd=ROOT, env=env)  # noqa: ASYNC220
        for role in ("orchestrator", "service")
    }
    try:
        async with open_backends(settings) as (transport, store):
            client = Client(transport, store)
            await _ready(client, settings, time.monotonic() + 60)
            seed, _ = await _drive(client, min(inflight, 20), inflight)
            per_retained = None
            if prefill:
                before_prefill = await _used_memory(store)
                await _prefill(store, seed, prefill)
                per_retained = (await _used_memory(store) - before_prefill) / prefill
            # warm-up (after the prefill, so that Redis has finished growing its tables)
            await _drive(client, min(flows, 2 * inflight), inflight)
            memory_before = await _used_memory(store)
            ps = {role: psutil.Process(p.pid) for role, p in procs.items()}
            ps["driver"] = psutil.Process()
            ps.update(server_processes())
            before = cpu_seconds(ps)
            started = time.perf_counter()
            run_ids, flow_latencies = await _drive(client, flows, inflight)
            seconds = time.perf_counter() - started
            after = cpu_seconds(ps)
            cpu = {r: after[r] - before[r] for r in ps}
            memory_per_run = (await _used_memory(store) - memory_before) / flows
            for run_id in run_ids[:50]:
                record = await store.get_run(run_id)
                assert record is not None and record.state is RunState.SUCCEEDED, record
            step_latencies = await _step_latencies(client, run_ids)
            await _cleanup(store, settings)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=30)
    extra: dict[str, Any] = {
        "retained_runs_before": prefill,
        # noisy for a few thousand runs (client buffers, dict tables): see the retained figure
        "redis_bytes_per_finished_run": round(memory_per_run),
    }
    if per_retained is not None:
        extra["redis_bytes_per_retained_run"] = round(per_retained)
    return Result("orch_serv", inflight, flows, seconds, step_latencies, flow_latencies, cpu, extra)


async def _cleanup(store: Any, settings: Settings) -> None:
    redis = store.redis
    keys = [k async for k in redis.scan_iter(match=f"{settings.key_prefix}:*", count=10_000)]
    for i in range(0, len(keys), 1000):
        if is_cluster(redis):  # keys of many slots: one DEL each, pipelined per node
            pipe = redis.pipeline(transaction=False)
            for key in keys[i : i + 1000]:
                pipe.delete(key)
            await pipe.execute()
        else:
            await redis.delete(*keys[i : i + 1000])
    connection = await aio_pika.connect(AMQP_NODE)
    async with connection:
        channel = await connection.channel()
        for queue in ("orchestrator", "dead", "svc.bench"):
            await channel.queue_delete(f"{settings.namespace}.{queue}")
        for exchange in ("", ".dlx", ".control"):
            await channel.exchange_delete(f"{settings.namespace}{exchange}")


def run(flows: int, inflight: int, *, namespace: str, prefill: int = 0) -> Result:
    """Measure ``flows`` 3-step runs with ``inflight`` of them in flight at a time (after
    ``prefill`` finished runs were put in Redis)."""
    return asyncio.run(measure(flows, inflight, namespace, prefill=prefill))


if __name__ == "__main__":
    import argparse
    import json

    from bench.common import summarize

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=500)
    args = parser.parse_args()
    result = run(args.flows, args.inflight, namespace=f"bench_orch_{os.getpid()}")
    print(json.dumps(summarize(result), indent=2))
