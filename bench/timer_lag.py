"""Timeout detection lag: from a run's deadline to its recorded TIMED_OUT.

For each size N, N active timers (due an hour from now) sit in the timer set, then probe runs
with deadlines spread over a couple of seconds are started on a step that no service
consumes; the lag of each is ``finished_at - deadline`` as recorded in Redis by the
orchestrator that fired the timer. Real RabbitMQ and Redis, one orchestrator in-process.

    python -m bench.timer_lag [--sizes 10000 100000] [--probes 300] [--out bench/results]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika

from bench.common import AMQP_URL
from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator, Settings
from orch_serv.constants import RunState
from orch_serv.logs import configure_logging


class Idle(Block):
    """A step that nobody consumes: only the deadline can end the run."""

    name_block = "idle"
    service = "nobody"


class Waiting(Flow):
    name_flow = "waiting"
    steps_flow = FlowBuilder(FlowBlock(Idle))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def measure(size: int, probes: int, spread: float) -> dict[str, Any]:
    name = f"bench_timers_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        namespace=name,
        key_prefix=name,
        log_level="WARNING",
        amqp_url=AMQP_URL,
        redis_url="redis://127.0.0.1:6379/0",
    )
    orchestrator = Orchestrator(flows=[Waiting])
    async with orchestrator.run(settings) as running:
        store = running.store
        redis = store.redis  # type: ignore[attr-defined]
        far = int((time.time() + 3600) * 1000)
        keys = store.keys  # type: ignore[attr-defined]
        for start in range(0, size, 10_000):
            pipe = redis.pipeline(transaction=False)
            for i in range(start, min(size, start + 10_000)):
                run_id = f"background-{i}"
                pipe.zadd(keys.timers_of(run_id), {f"{run_id}|deadline|run|0|0": far})
            await pipe.execute()
        base = time.time() + 1.0
        run_ids = []
        for i in range(probes):
            deadline_in = base + spread * i / probes - time.time()
            run_ids.append(await running.start("waiting", {}, deadline=max(deadline_in, 0.05)))
        lags = []
        for run_id in run_ids:
            record = await running.wait(run_id, timeout=120)
            assert record.state is RunState.TIMED_OUT, record
            assert record.finished_at is not None and record.deadline is not None
            lags.append((record.finished_at - record.deadline) * 1000)
        pipe = redis.pipeline(transaction=False)
        for shard in keys.every_shard:
            pipe.zcard(shard.timers)
        active = sum(await pipe.execute())
        keys = [k async for k in redis.scan_iter(match=f"{name}:*", count=10_000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in ("orchestrator", "dead", "svc.nobody"):
            await channel.queue_delete(f"{name}.{queue}")
        for exchange in ("", ".dlx", ".control"):
            await channel.exchange_delete(f"{name}{exchange}")
    return {
        "active_timers": size,
        "timers_left_after": int(active),
        "probes": probes,
        "lag_ms_p50": round(statistics.median(lags), 2),
        "lag_ms_p99": round(percentile(lags, 99), 2),
        "lag_ms_max": round(max(lags), 2),
        "lag_ms_min": round(min(lags), 2),
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for size in args.sizes:
        result = await measure(size, args.probes, args.spread)
        results.append(result)
        print(
            f"{size:>7} active timers: lag p50 {result['lag_ms_p50']:.1f} ms, "
            f"p99 {result['lag_ms_p99']:.1f} ms (max {result['lag_ms_max']:.1f} ms)"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument(
        "--spread", type=float, default=3.0, help="seconds over which deadlines fall"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    configure_logging("WARNING")
    results = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "timer_lag.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
