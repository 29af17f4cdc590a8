"""Dramatiq: a ``pipeline`` of the same 3 trivial actors (RabbitMQ broker with publisher
confirms, persistent messages, every step's result written to Redis).

The broker and actors live in ``bench.dramatiq_app`` (namespaced by ``BENCH_NS``); the worker
is a separate process tree (``dramatiq bench.dramatiq_app --processes 2 --threads 8``, like
Celery's 2 prefork children). The driver (this process, single-threaded, pika's blocking
connection as Dramatiq uses it) keeps ``inflight`` pipelines going until ``flows`` are done:
it subscribes to ``<ns>.done`` (published by the last step once its result is stored), then
runs ``pipeline([step1.message(i), step2.message(), step3.message()])``.

Latencies are measured as for Celery (``bench.celery_chain``): flow latency is
``pipeline.run()`` -> the last step's announcement seen by the driver; step 1 is "pipeline
submitted -> step 1 body done", step k > 1 is "step k-1 body done -> step k body done"
(wall clock, same host). CPU (user + system) is measured for the driver, the worker's whole
process tree, RabbitMQ and Redis over the measured interval.

    python -m bench.dramatiq_pipeline --flows 2000 --inflight 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import pika  # type: ignore[import-untyped]
import psutil  # type: ignore[import-untyped]
import redis
from dramatiq import pipeline

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
from bench.dramatiq_app import App, done_channel, make, queue_name, queues, results_namespace

#: Worker processes and threads per process.
PROCESSES, THREADS = 2, 8
WORKER_START_TIMEOUT = 60.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _start_worker(namespace: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "bench.dramatiq_app",
        "--processes",
        str(PROCESSES),
        "--threads",
        str(THREADS),
        "--queues",
        queue_name(namespace),
        "--skip-logging",  # no INFO lines; warnings and errors still reach stderr
    ]
    env = {**os.environ, "BENCH_NS": namespace, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=sys.stderr)


def _wait_until_ready(namespace: str, worker: subprocess.Popen[bytes]) -> None:
    """Poll the queue's consumer count until every worker process consumes it."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while True:
            declared = channel.queue_declare(queue_name(namespace), passive=True)
            if declared.method.consumer_count >= PROCESSES:
                return
            if worker.poll() is not None:
                raise RuntimeError(f"dramatiq worker exited early with code {worker.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dramatiq worker did not consume in {WORKER_START_TIMEOUT}s")
            connection.sleep(0.05)
    finally:
        connection.close()


def _measure(
    app: App, pubsub: Any, flows: int, inflight: int, timeout: float
) -> tuple[float, list[float], list[float]]:
    """Keep ``inflight`` pipelines going until ``flows`` are done."""
    submitted: dict[str, tuple[float, float]] = {}  # last message id -> (perf, wall)
    step_latencies: list[float] = []
    flow_latencies: list[float] = []
    step1, step2, step3 = app.steps

    def submit(flow: int) -> None:
        pipe = pipeline([step1.message(flow), step2.message(), step3.message()], broker=app.broker)
        submitted[pipe.messages[-1].message_id] = (time.perf_counter(), time.time())
        pipe.run()  # type: ignore[no-untyped-call]

    started = done = 0
    t0 = time.perf_counter()
    deadline = t0 + timeout
    while done < flows:
        while started < flows and started - done < inflight:
            submit(started)
            started += 1
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        while message is not None:
            seen = time.perf_counter()
            payload = json.loads(message["data"])
            sent_perf, sent_wall = submitted.pop(payload["id"])
            if not payload["ok"]:
                raise RuntimeError(f"dramatiq pipeline {payload['id']} failed")
            flow_latencies.append((seen - sent_perf) * 1000)
            bounds = [sent_wall, *payload["ends"]]
            step_latencies.extend((b - a) * 1000 for a, b in pairwise(bounds))
            done += 1
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
        if time.perf_counter() > deadline:
            raise TimeoutError(f"dramatiq: {done}/{flows} pipelines done after {timeout}s")
    return time.perf_counter() - t0, step_latencies, flow_latencies


def _cleanup(namespace: str, client: redis.Redis) -> None:
    """Delete the queues Dramatiq declared and every result key of this namespace."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        for name in queues(namespace):
            channel.queue_delete(name)
    finally:
        connection.close()
    keys = list(client.scan_iter(match=f"{results_namespace(namespace)}:*", count=10_000))
    for i in range(0, len(keys), 1000):
        client.unlink(*keys[i : i + 1000])


def run(flows: int, inflight: int, *, namespace: str, timeout: float = 300.0) -> Result:
    """Run ``flows`` 3-actor pipelines, ``inflight`` at a time, through Dramatiq.

    ``namespace`` names the actors, queues and result keys (all deleted at the end); the
    worker is shut down. ``timeout`` bounds the measured part (seconds).
    """
    if flows < 1 or inflight < 1:
        raise ValueError("flows and inflight must be >= 1")
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    app = make(namespace)
    worker = _start_worker(namespace)
    tree = process_tree(worker.pid)
    try:
        pubsub.subscribe(done_channel(namespace))
        app.broker.declare_queue(queue_name(namespace), ensure=True)
        _wait_until_ready(namespace, worker)
        tree = process_tree(worker.pid)
        me = psutil.Process()
        servers = server_processes()
        servers_before = cpu_seconds(servers)
        driver_before, worker_before = tree_cpu([me]), tree_cpu(tree)
        seconds, step_latencies, flow_latencies = _measure(app, pubsub, flows, inflight, timeout)
        driver_after, servers_after = tree_cpu([me]), cpu_seconds(servers)
        worker_after = tree_cpu(process_tree(worker.pid))
        return Result(
            system="dramatiq",
            inflight=inflight,
            flows=flows,
            seconds=seconds,
            step_latencies_ms=step_latencies,
            flow_latencies_ms=flow_latencies,
            cpu_seconds={
                "driver": driver_after[me.pid] - driver_before[me.pid],
                "worker": cpu_delta(worker_before, worker_after),
                **{k: servers_after[k] - servers_before[k] for k in servers},
            },
        )
    finally:
        try:
            stop_tree(worker, tree)
            app.broker.close()
            _cleanup(namespace, client)
        finally:
            pubsub.close()
            client.close()


def main(argv: list[str] | None = None) -> None:
    """Command line: run the benchmark and print its summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.dramatiq_pipeline", description=__doc__)
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=500)
    parser.add_argument("--namespace", default=f"bench_dramatiq_{uuid.uuid4().hex[:8]}")
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args(argv)
    result = run(
        options.flows, options.inflight, namespace=options.namespace, timeout=options.timeout
    )
    print(json.dumps(summarize(result), indent=2))


if __name__ == "__main__":
    main()
