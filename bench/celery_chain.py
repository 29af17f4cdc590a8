"""Celery: a chain of the same 3 trivial steps (RabbitMQ broker, Redis result backend).

The app and its tasks live in ``bench.celery_app`` (namespaced by ``BENCH_NS``); the worker
is a separate process (``celery worker --pool prefork --concurrency 2``). Durability matches
the other systems: persistent messages, publisher confirms, late acks, every task's state
written to Redis by the result backend.

The driver (this process, single-threaded) keeps ``inflight`` chains
``chain(step1.s(i), step2.s(), step3.s())`` going until ``flows`` are done. Each chain is
frozen first, so that the driver subscribes to its last task's result (Celery's own Redis
pub/sub result consumer, ``AsyncResult.then`` + ``drain_events`` -- the mechanism
``AsyncResult.get()`` uses) before it is published; no polling, no threads.

Latencies:

* flow latency: ``apply_async`` of the chain -> the chain's result seen by the driver;
* step latency, measured rather than derived from the flow latency: each task returns,
  with its value, the wall-clock time (``time.time()``) at which its body finished. Step 1
  is "chain submitted -> step 1 body done"; step k > 1 is "step k-1 body done (Celery then
  publishes step k, confirmed) -> step k body done". This is the Celery counterpart of the
  raw baseline's "command published -> reply received": it covers the broker round trip
  and the worker, not the state write nor, for step 3, the trip of the result back to the
  driver (which the flow latency does include). Clocks are the same host's wall clock.

CPU (user + system) is measured for the driver and for the worker's whole process tree
(main process + prefork children) over the measured interval.

    python -m bench.celery_chain --flows 2000 --inflight 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections import deque
from itertools import pairwise
from pathlib import Path
from typing import Any

import psutil
import redis
from celery import Celery, chain
from celery.result import AsyncResult

from bench.celery_app import StepValue, exchanges, make_app, queue_name, task_name
from bench.common import REDIS_URL, STEPS_PER_FLOW, Result, cpu_seconds, server_processes, summarize

#: How long the worker may take to answer a ping.
WORKER_START_TIMEOUT = 60.0
#: How long the worker may take to shut down (warm) after SIGTERM before it is killed.
WORKER_STOP_TIMEOUT = 30.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def worker_hostname(namespace: str) -> str:
    """The node name given to the worker (``-n``), used to ping it."""
    return f"{namespace}@bench"


def _start_worker(namespace: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        "2",
        "-Q",
        queue_name(namespace),
        "-n",
        worker_hostname(namespace),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "WARNING",
    ]
    # the banner goes to stderr, so that stdout carries only the summary
    return subprocess.Popen(
        command, cwd=PROJECT_ROOT, env={**os.environ, "BENCH_NS": namespace}, stdout=sys.stderr
    )


def _wait_until_ready(app: Celery, namespace: str, worker: subprocess.Popen[bytes]) -> None:
    """Ping the worker (control exchange namespaced, so only ours answers) until it replies."""
    hostname = worker_hostname(namespace)
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while True:
        replies: list[dict[str, Any]] = app.control.ping(destination=[hostname], timeout=0.5)
        if any(hostname in reply for reply in replies):
            return
        if worker.poll() is not None:
            raise RuntimeError(f"celery worker exited early with code {worker.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"celery worker did not answer in {WORKER_START_TIMEOUT}s")


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _tree_cpu(processes: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds (user + system) per pid; processes that are gone are left out."""
    seconds: dict[int, float] = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = float(times.user + times.system)
    return seconds


def _stop_worker(worker: subprocess.Popen[bytes], tree: list[psutil.Process]) -> None:
    """Warm shutdown (SIGTERM), then kill the worker and any pool child left behind."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=WORKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=WORKER_STOP_TIMEOUT)
    for process in tree:
        if process.pid == worker.pid:
            continue
        try:
            process.wait(timeout=5)
        except psutil.TimeoutExpired:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def _cleanup_broker(app: Celery, namespace: str) -> None:
    """Delete the task queue and the exchanges this run declared."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        channel.queue_delete(queue_name(namespace))
        for exchange in exchanges(namespace):
            channel.exchange_delete(exchange)


def _delete_results(task_ids: list[str]) -> None:
    """Delete exactly the ``celery-task-meta-<id>`` keys of this run's tasks."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [f"celery-task-meta-{task_id}" for task_id in task_ids]
        for i in range(0, len(keys), 1000):
            client.unlink(*keys[i : i + 1000])
    finally:
        client.close()


def _measure(
    app: Celery, namespace: str, flows: int, inflight: int, timeout: float, task_ids: list[str]
) -> tuple[float, list[float], list[float]]:
    """Keep ``inflight`` chains going until ``flows`` are done.

    Returns the measured seconds, step latencies and flow latencies (ms). Every task id is
    appended to ``task_ids`` before its chain is published, for clean-up.
    """
    consumer = app.backend.result_consumer
    names = [task_name(namespace, step) for step in range(1, STEPS_PER_FLOW + 1)]
    completed: deque[tuple[AsyncResult, float]] = deque()
    submitted: dict[str, tuple[float, float]] = {}  # last task id -> (perf, wall) at submit
    step_latencies: list[float] = []
    flow_latencies: list[float] = []

    def on_ready(result: AsyncResult) -> None:
        completed.append((result, time.perf_counter()))

    def submit(flow: int) -> None:
        signature = chain(
            app.signature(names[0], args=(flow,)),
            *(app.signature(name) for name in names[1:]),
        )
        last: AsyncResult = signature.freeze()
        node: AsyncResult | None = last
        while node is not None:
            task_ids.append(node.id)
            node = node.parent
        last.then(on_ready)  # subscribes to its result before it can be produced
        submitted[last.id] = (time.perf_counter(), time.time())
        sent: AsyncResult = signature.apply_async()
        if sent.id != last.id:
            raise RuntimeError("celery chain: task ids changed between freeze and apply")

    started = done = 0
    t0 = time.perf_counter()
    deadline = t0 + timeout
    while done < flows:
        while started < flows and started - done < inflight:
            submit(started)
            started += 1
        consumer.drain_events(timeout=0.05)
        while completed:
            result, seen = completed.popleft()
            sent_perf, sent_wall = submitted.pop(result.id)
            if result.state != "SUCCESS":
                raise RuntimeError(
                    f"celery chain {result.id} ended {result.state}: {result.result}"
                )
            value: StepValue = result.result
            flow_latencies.append((seen - sent_perf) * 1000)
            bounds = [sent_wall, *value["ends"]]
            step_latencies.extend((b - a) * 1000 for a, b in pairwise(bounds))
            done += 1
        if time.perf_counter() > deadline:
            raise TimeoutError(f"celery: {done}/{flows} chains done after {timeout}s")
    return time.perf_counter() - t0, step_latencies, flow_latencies


def run(flows: int, inflight: int, *, namespace: str, timeout: float = 300.0) -> Result:
    """Run ``flows`` 3-task chains, ``inflight`` at a time, through Celery.

    ``namespace`` names the tasks, queue and exchanges (all deleted at the end, with the
    result keys of every task this run sent); the worker is shut down. ``timeout`` bounds
    the measured part (seconds).
    """
    if flows < 1 or inflight < 1:
        raise ValueError("flows and inflight must be >= 1")
    app = make_app(namespace)
    task_ids: list[str] = []
    worker = _start_worker(namespace)
    tree: list[psutil.Process] = _tree(psutil.Process(worker.pid))
    try:
        _wait_until_ready(app, namespace, worker)
        tree = _tree(psutil.Process(worker.pid))
        me = psutil.Process()
        servers = server_processes()
        servers_before = cpu_seconds(servers)
        driver_before = _tree_cpu([me])
        worker_before = _tree_cpu(tree)
        seconds, step_latencies, flow_latencies = _measure(
            app, namespace, flows, inflight, timeout, task_ids
        )
        driver_after = _tree_cpu([me])
        servers_after = cpu_seconds(servers)
        worker_after = _tree_cpu(_tree(psutil.Process(worker.pid)))
        worker_cpu = sum(cpu - worker_before.get(pid, 0.0) for pid, cpu in worker_after.items())
        return Result(
            system="celery",
            inflight=inflight,
            flows=flows,
            seconds=seconds,
            step_latencies_ms=step_latencies,
            flow_latencies_ms=flow_latencies,
            cpu_seconds={
                "driver": driver_after[me.pid] - driver_before[me.pid],
                "worker": worker_cpu,
                **{k: servers_after[k] - servers_before[k] for k in servers},
            },
        )
    finally:
        try:
            _stop_worker(worker, tree)
            app.backend.result_consumer.stop()
            _cleanup_broker(app, namespace)
        finally:
            _delete_results(task_ids)
            app.close()


def main(argv: list[str] | None = None) -> None:
    """Command line: run the benchmark and print its summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.celery_chain", description=__doc__)
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=500)
    parser.add_argument("--namespace", default=f"bench_celery_{uuid.uuid4().hex[:8]}")
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args(argv)
    result = run(
        options.flows, options.inflight, namespace=options.namespace, timeout=options.timeout
    )
    print(json.dumps(summarize(result), indent=2))


if __name__ == "__main__":
    main()
