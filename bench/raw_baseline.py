"""The raw baseline: a plain aio-pika + redis-py loop doing per step what the orchestrator does.

It is the yardstick, not a competitor to tune: no framework, no batching tricks. Per step:

1. the driver (this process) publishes the command, persistent, and awaits its publisher
   confirm (``await exchange.publish(...)`` on a channel with confirms, one publish at a time
   per flow) to the durable queue ``<namespace>.work``;
2. a worker in a *separate process* consumes it (manual ack, prefetch 500), publishes the
   reply the same way (persistent, confirm awaited) to the durable queue
   ``<namespace>.replies``, then acks the command;
3. the driver consumes the reply (manual ack), writes the step to Redis in one pipeline
   (``HSET <namespace>:flow:<id> ...`` + ``XADD <namespace>:flow:<id>:events * ...``),
   acks the reply and publishes the next step, or finishes the flow after step 3.

The driver keeps ``inflight`` flows going until ``flows`` are done. Step latency is
command publish start -> reply received (driver side, so it excludes the Redis write); flow
latency is first publish -> last step written to Redis. CPU (user + system) is measured
with psutil for the driver and the worker process over the measured interval only (worker
start-up and clean-up excluded).

    python -m bench.raw_baseline --flows 2000 --inflight 500
    python -m bench.raw_baseline worker <namespace>      # the worker process (started by run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import psutil
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from redis.asyncio import Redis

from bench.common import (
    AMQP_URL,
    REDIS_URL,
    STEPS_PER_FLOW,
    Result,
    cpu_seconds,
    server_processes,
    summarize,
)

#: Messages a consumer may hold unacknowledged (worker and driver alike).
PREFETCH = 500
#: How long the worker may take to start consuming.
WORKER_START_TIMEOUT = 30.0
#: How long the worker may take to stop after SIGTERM before it is killed.
WORKER_STOP_TIMEOUT = 10.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def work_queue(namespace: str) -> str:
    """The durable queue of commands (driver -> worker)."""
    return f"{namespace}.work"


def reply_queue(namespace: str) -> str:
    """The durable queue of replies (worker -> driver)."""
    return f"{namespace}.replies"


def flow_key(namespace: str, flow_id: int) -> str:
    """The Redis hash holding a flow's current state."""
    return f"{namespace}:flow:{flow_id}"


def events_key(namespace: str, flow_id: int) -> str:
    """The Redis stream holding a flow's step events."""
    return f"{namespace}:flow:{flow_id}:events"


def persistent(body: dict[str, int]) -> aio_pika.Message:
    """A persistent JSON message."""
    return aio_pika.Message(
        json.dumps(body).encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


# --------------------------------------------------------------------------------------------
# Worker (separate process)
# --------------------------------------------------------------------------------------------


async def worker_main(namespace: str) -> None:
    """Consume commands, publish each reply (persistent, confirmed), then ack the command.

    Stops on SIGTERM/SIGINT, or when the parent process goes away.
    """
    parent = os.getppid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()  # publisher confirms on (the default)
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.declare_queue(work_queue(namespace), durable=True)
        replies = reply_queue(namespace)

        async def on_command(message: AbstractIncomingMessage) -> None:
            command = json.loads(message.body)
            reply = {
                "flow": command["flow"],
                "step": command["step"],
                "value": command["value"] + 1,
            }
            await channel.default_exchange.publish(persistent(reply), routing_key=replies)
            await message.ack()

        await queue.consume(on_command)
        while not stop.is_set():
            if os.getppid() != parent:  # orphaned: the driver died
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass
    finally:
        await connection.close()


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


@dataclass
class _Flow:
    """Driver-side timing of one flow in flight."""

    started: float
    step_started: float = 0.0


def _start_worker(namespace: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.raw_baseline", "worker", namespace],
        cwd=PROJECT_ROOT,
    )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(timeout=WORKER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=WORKER_STOP_TIMEOUT)


async def _wait_for_consumer(
    channel: AbstractChannel, queue: str, worker: subprocess.Popen[bytes]
) -> None:
    """Poll the queue's consumer count (passive declare) until the worker consumes."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while True:
        declared = await channel.declare_queue(queue, passive=True)
        result = declared.declaration_result
        if result is not None and (result.consumer_count or 0) >= 1:
            return
        if worker.poll() is not None:
            raise RuntimeError(f"raw worker exited early with code {worker.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"raw worker did not consume {queue} in {WORKER_START_TIMEOUT}s")
        await asyncio.sleep(0.05)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _run(flows: int, inflight: int, namespace: str, timeout: float) -> Result:
    connection = await aio_pika.connect(AMQP_URL)
    redis: Redis = Redis.from_url(REDIS_URL)
    worker: subprocess.Popen[bytes] | None = None
    started_flows = 0
    try:
        channel = await connection.channel()  # publisher confirms on (the default)
        await channel.set_qos(prefetch_count=PREFETCH)
        await channel.declare_queue(work_queue(namespace), durable=True)
        replies = await channel.declare_queue(reply_queue(namespace), durable=True)
        exchange = channel.default_exchange
        commands = work_queue(namespace)

        worker = _start_worker(namespace)
        await _wait_for_consumer(channel, commands, worker)

        in_flight: dict[int, _Flow] = {}
        step_latencies: list[float] = []
        flow_latencies: list[float] = []
        done = 0
        finished = asyncio.Event()
        failure: list[BaseException] = []

        async def publish_step(flow_id: int, step: int, value: int) -> None:
            in_flight[flow_id].step_started = time.perf_counter()
            body = {"flow": flow_id, "step": step, "value": value}
            await exchange.publish(persistent(body), routing_key=commands)

        async def start_flow() -> None:
            nonlocal started_flows
            flow_id = started_flows
            started_flows += 1
            in_flight[flow_id] = _Flow(started=time.perf_counter())
            await publish_step(flow_id, 1, flow_id)

        async def on_reply(message: AbstractIncomingMessage) -> None:
            nonlocal done
            try:
                received = time.perf_counter()
                reply = json.loads(message.body)
                flow_id, step, value = reply["flow"], reply["step"], reply["value"]
                flow = in_flight[flow_id]
                step_latencies.append((received - flow.step_started) * 1000)
                state = "done" if step == STEPS_PER_FLOW else "running"
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.hset(
                        flow_key(namespace, flow_id),
                        mapping={"step": step, "value": value, "state": state},
                    )
                    pipe.xadd(events_key(namespace, flow_id), {"step": step, "value": value})
                    await pipe.execute()
                await message.ack()
                if step < STEPS_PER_FLOW:
                    await publish_step(flow_id, step + 1, value)
                    return
                flow_latencies.append((time.perf_counter() - flow.started) * 1000)
                del in_flight[flow_id]
                done += 1
                if done == flows:
                    finished.set()
                elif started_flows < flows:
                    await start_flow()
            except BaseException as exc:  # surface it to the driver instead of hanging
                failure.append(exc)
                finished.set()
                raise

        await replies.consume(on_reply)

        me = psutil.Process()
        worker_process = psutil.Process(worker.pid)
        servers = server_processes()
        cpu_before = {"driver": _cpu(me), "worker": _cpu(worker_process)}
        cpu_before.update(cpu_seconds(servers))
        t0 = time.perf_counter()
        await asyncio.gather(*(start_flow() for _ in range(min(inflight, flows))))
        try:
            await asyncio.wait_for(finished.wait(), timeout=timeout)
        except TimeoutError:
            raise TimeoutError(
                f"raw baseline: {done}/{flows} flows done after {timeout}s"
            ) from None
        seconds = time.perf_counter() - t0
        cpu_after = {"driver": _cpu(me), "worker": _cpu(worker_process)}
        cpu_after.update(cpu_seconds(servers))
        if failure:
            raise RuntimeError("raw baseline: a reply failed") from failure[0]

        return Result(
            system="raw",
            inflight=inflight,
            flows=flows,
            seconds=seconds,
            step_latencies_ms=step_latencies,
            flow_latencies_ms=flow_latencies,
            cpu_seconds={k: cpu_after[k] - cpu_before[k] for k in cpu_before},
        )
    finally:
        if worker is not None:
            _stop_worker(worker)
        try:
            cleanup = await connection.channel()
            await cleanup.queue_delete(work_queue(namespace))
            await cleanup.queue_delete(reply_queue(namespace))
        finally:
            await connection.close()
            try:
                keys = [
                    key
                    for flow_id in range(started_flows)
                    for key in (flow_key(namespace, flow_id), events_key(namespace, flow_id))
                ]
                for i in range(0, len(keys), 1000):
                    await redis.unlink(*keys[i : i + 1000])
            finally:
                await redis.aclose()


def run(flows: int, inflight: int, *, namespace: str, timeout: float = 300.0) -> Result:
    """Run ``flows`` 3-step flows, ``inflight`` at a time, through the raw baseline.

    ``namespace`` prefixes the queues and Redis keys, all of which are deleted at the end;
    the worker process is terminated. ``timeout`` bounds the measured part (seconds).
    """
    if flows < 1 or inflight < 1:
        raise ValueError("flows and inflight must be >= 1")
    return asyncio.run(_run(flows, inflight, namespace, timeout))


def main(argv: list[str] | None = None) -> None:
    """Command line: run the benchmark, or (``worker <namespace>``) be the worker."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["worker"]:
        if len(args) != 2:
            raise SystemExit("usage: python -m bench.raw_baseline worker <namespace>")
        asyncio.run(worker_main(args[1]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.raw_baseline", description=__doc__)
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=500)
    parser.add_argument("--namespace", default=f"bench_raw_{uuid.uuid4().hex[:8]}")
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args(args)
    result = run(
        options.flows, options.inflight, namespace=options.namespace, timeout=options.timeout
    )
    print(json.dumps(summarize(result), indent=2))


if __name__ == "__main__":
    main()
