"""taskiq: a ``taskiq-pipelines`` ``Pipeline`` of the same 3 trivial tasks (taskiq-aio-pika
broker: persistent messages, publisher confirms; taskiq-redis result backend: every step's
result written to Redis).

The broker and tasks live in ``bench.taskiq_app`` (namespaced by ``BENCH_NS``); the workers
are a separate process tree (``taskiq worker bench.taskiq_app:broker --workers 2``, like
Celery's 2 prefork children). The driver (this process, one asyncio loop) keeps ``inflight``
pipelines going until ``flows`` are done: it subscribes to ``<ns>.done`` (published by the
last step once its result is saved), then kicks
``Pipeline(broker, step1).call_next(step2).call_next(step3).kiq(i)`` (a new ``Pipeline`` per
flow: ``kiq`` assigns the task ids on the object).

Latencies are measured as for Celery (``bench.celery_chain``): flow latency is ``kiq`` ->
the last step's announcement seen by the driver; step 1 is "pipeline submitted -> step 1
body done", step k > 1 is "step k-1 body done -> step k body done" (wall clock, same host).
CPU (user + system) is measured for the driver, the workers' whole process tree, RabbitMQ
and Redis over the measured interval.

    python -m bench.taskiq_pipeline --flows 2000 --inflight 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import aio_pika
import psutil  # type: ignore[import-untyped]
from redis.asyncio import Redis
from taskiq_pipelines import Pipeline

from bench.common import (
    AMQP_URL,
    REDIS_URL,
    Result,
    cpu_delta,
    cpu_seconds,
    process_tree,
    server_processes,
    stop_tree,
    summarize,
    tree_cpu,
)
from bench.taskiq_app import (
    App,
    dead_letter_queue,
    done_channel,
    exchange_name,
    make,
    queue_name,
    results_prefix,
)

#: Worker processes (each one asyncio loop).
WORKERS = 2
WORKER_START_TIMEOUT = 60.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _start_worker(namespace: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "taskiq",
        "worker",
        "bench.taskiq_app:broker",
        "--workers",
        str(WORKERS),
        "--log-level",
        "WARNING",
    ]
    env = {**os.environ, "BENCH_NS": namespace, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=sys.stderr)


async def _wait_until_ready(namespace: str, worker: subprocess.Popen[bytes]) -> None:
    """Poll the queue's consumer count until every worker process consumes it."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while True:
            declared = await channel.declare_queue(queue_name(namespace), passive=True)
            result = declared.declaration_result
            if result is not None and (result.consumer_count or 0) >= WORKERS:
                return
            if worker.poll() is not None:
                raise RuntimeError(f"taskiq worker exited early with code {worker.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"taskiq worker did not consume in {WORKER_START_TIMEOUT}s")
            await asyncio.sleep(0.05)


class _Flows:
    """Matches announcements to submitted pipelines (either may come first)."""

    def __init__(self, flows: int) -> None:
        self.flows = flows
        self.submitted: dict[str, tuple[float, float]] = {}  # last task id -> (perf, wall)
        self.early: dict[str, tuple[float, dict[str, Any]]] = {}
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.step_latencies: list[float] = []
        self.flow_latencies: list[float] = []

    def announced(self, seen: float, payload: dict[str, Any]) -> None:
        task_id = payload["id"]
        if task_id not in self.submitted:
            self.early[task_id] = (seen, payload)
            return
        self._finish(task_id, seen, payload)

    def sent(self, task_id: str, perf: float, wall: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[task_id] = future
        self.submitted[task_id] = (perf, wall)
        if task_id in self.early:
            self._finish(task_id, *self.early.pop(task_id))
        return future

    def _finish(self, task_id: str, seen: float, payload: dict[str, Any]) -> None:
        sent_perf, sent_wall = self.submitted.pop(task_id)
        future = self.waiting.pop(task_id)
        if not payload["ok"]:
            future.set_exception(RuntimeError(f"taskiq pipeline {task_id} failed"))
            return
        self.flow_latencies.append((seen - sent_perf) * 1000)
        bounds = [sent_wall, *payload["ends"]]
        self.step_latencies.extend((b - a) * 1000 for a, b in pairwise(bounds))
        future.set_result(None)


async def _listen(pubsub: Any, flows: _Flows) -> None:
    async for message in pubsub.listen():
        if message.get("type") == "message":
            flows.announced(time.perf_counter(), json.loads(message["data"]))


async def _measure(
    app: App, pubsub: Any, flows: int, inflight: int, timeout: float
) -> tuple[float, _Flows]:
    """Keep ``inflight`` pipelines going until ``flows`` are done."""
    state = _Flows(flows)
    listener = asyncio.create_task(_listen(pubsub, state))
    slots = asyncio.Semaphore(inflight)
    step1, step2, step3 = app.steps

    async def one(flow: int) -> None:
        async with slots:
            pipe: Any = Pipeline(app.broker, step1).call_next(step2).call_next(step3)
            perf, wall = time.perf_counter(), time.time()
            task = await pipe.kiq(flow)
            await state.sent(task.task_id, perf, wall)

    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(flows))), timeout)
    except TimeoutError:
        done = len(state.flow_latencies)
        raise TimeoutError(f"taskiq: {done}/{flows} pipelines done after {timeout}s") from None
    finally:
        listener.cancel()
    return time.perf_counter() - t0, state


async def _cleanup(namespace: str, client: Redis) -> None:
    """Delete the queues and exchange taskiq declared and every result key of this run."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in (queue_name(namespace), dead_letter_queue(namespace)):
            await channel.queue_delete(queue)
        await channel.exchange_delete(exchange_name(namespace))
    keys = [k async for k in client.scan_iter(match=f"{results_prefix(namespace)}:*", count=10_000)]
    for i in range(0, len(keys), 1000):
        await client.unlink(*keys[i : i + 1000])


async def _run(flows: int, inflight: int, namespace: str, timeout: float) -> Result:
    client = Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    app = make(namespace)
    worker: subprocess.Popen[bytes] | None = None
    tree: list[Any] = []
    try:
        await pubsub.subscribe(done_channel(namespace))
        await app.broker.startup()  # declares the exchange and the queues
        worker = _start_worker(namespace)
        await _wait_until_ready(namespace, worker)
        tree = process_tree(worker.pid)
        me = psutil.Process()
        servers = server_processes()
        servers_before = cpu_seconds(servers)
        driver_before, worker_before = tree_cpu([me]), tree_cpu(tree)
        seconds, state = await _measure(app, pubsub, flows, inflight, timeout)
        driver_after, servers_after = tree_cpu([me]), cpu_seconds(servers)
        worker_after = tree_cpu(process_tree(worker.pid))
        return Result(
            system="taskiq",
            inflight=inflight,
            flows=flows,
            seconds=seconds,
            step_latencies_ms=state.step_latencies,
            flow_latencies_ms=state.flow_latencies,
            cpu_seconds={
                "driver": driver_after[me.pid] - driver_before[me.pid],
                "worker": cpu_delta(worker_before, worker_after),
                **{k: servers_after[k] - servers_before[k] for k in servers},
            },
        )
    finally:
        try:
            if worker is not None:
                await asyncio.to_thread(stop_tree, worker, tree)
            await app.broker.shutdown()
            await _cleanup(namespace, client)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()


def run(flows: int, inflight: int, *, namespace: str, timeout: float = 300.0) -> Result:
    """Run ``flows`` 3-task pipelines, ``inflight`` at a time, through taskiq.

    ``namespace`` names the tasks, exchange, queues and result keys (all deleted at the
    end); the workers are shut down. ``timeout`` bounds the measured part (seconds).
    """
    if flows < 1 or inflight < 1:
        raise ValueError("flows and inflight must be >= 1")
    return asyncio.run(_run(flows, inflight, namespace, timeout))


def main(argv: list[str] | None = None) -> None:
    """Command line: run the benchmark and print its summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.taskiq_pipeline", description=__doc__)
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=500)
    parser.add_argument("--namespace", default=f"bench_taskiq_{uuid.uuid4().hex[:8]}")
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args(argv)
    result = run(
        options.flows, options.inflight, namespace=options.namespace, timeout=options.timeout
    )
    print(json.dumps(summarize(result), indent=2))


if __name__ == "__main__":
    main()
