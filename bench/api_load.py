"""Load on the HTTP API: requests per second of ``GET /v1/runs/{id}`` (``--endpoint run``) or
of a Statusek ``status/setStatus`` (``--endpoint setstatus``: each request sets STARTED on
its own instance of the "2-POINT LINE TASK" model, created beforehand), and the CPU the
server (and Redis, and this load generator) spent on them.

It starts ``orch-serv api`` in a subprocess on a fresh namespace and key prefix (real
RabbitMQ and Redis), finishes one run with an in-process orchestrator so there is a run to
read, writes a ``read`` token to Redis, then sends a bounded number of requests from
``--concurrency`` keep-alive connections. A finished run is read from Redis alone (no
RabbitMQ queue probe). Everything it created is deleted at the end. Not a test: it asserts
nothing but that every answer was a 200.

    python -m bench.api_load [--endpoint run|setstatus] [--requests 5000] [--concurrency 16]
                             [--out bench/results]

The load generator is Python (httpx) on the same machine: when its CPU is near 100 % it, not
the server, is the limit; the server's CPU per request is the figure to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import psutil
import redis.asyncio as aioredis

from bench.common import AMQP_URL, REDIS_URL, percentile, server_processes
from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator, Service, Settings
from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.constants import RunState

echo = Service("bench")


@echo.command("echo")
async def echo_command(body: dict[str, Any]) -> dict[str, Any]:
    """Returns its body."""
    return body


class Echo(Block):
    name_block = "echo"
    service = "bench"


class EchoFlow(Flow):
    name_flow = "echo"
    steps_flow = FlowBuilder(FlowBlock(Echo))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _healthy(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        for _ in range(600):
            if process.returncode is not None:
                raise RuntimeError(f"orch-serv api exited with {process.returncode}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("orch-serv api did not answer /healthz")


async def _cleanup(settings: Settings) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        ns = settings.namespace
        for queue in (f"{ns}.orchestrator", f"{ns}.dead", f"{ns}.svc.bench"):
            await channel.queue_delete(queue)
        for exchange in (ns, f"{ns}.dlx", f"{ns}.control"):
            await channel.exchange_delete(exchange)


Request = tuple[str, str, bytes | None]  # method, path, body


async def _hammer(
    url: str, requests: list[Request], token: str, concurrency: int
) -> tuple[list[float], dict[int, int]]:
    """Send ``requests`` over ``concurrency`` keep-alive connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pending = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

        async def worker() -> None:
            for method, path, body in pending:
                started = time.perf_counter()
                response = await client.request(method, path, content=body)
                latencies.append((time.perf_counter() - started) * 1000)
                ok = response.status_code == 200 and (
                    body is None or response.json().get("status") is True
                )
                code = response.status_code if ok or response.status_code != 200 else 599
                statuses[code] = statuses.get(code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses


async def _instances(url: str, token: str, count: int, concurrency: int) -> list[str]:
    """Create ``count`` Statusek instances; their tokens."""
    made: list[str] = []
    body = json.dumps({"object_name": "2-POINT LINE TASK", "instance_timeout": 3600}).encode()
    limits = httpx.Limits(max_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

        async def create() -> None:
            response = await client.post("/statusek/instance/create", content=body)
            made.append(response.json()["data"]["instance_token"])

        for start in range(0, count, 500):
            await asyncio.gather(*(create() for _ in range(min(500, count - start))))
    return made


def _set_started(tokens: list[str]) -> list[Request]:
    return [
        (
            "POST",
            "/statusek/status/setStatus",
            json.dumps({"instance_token": t, "status_name": "STARTED"}).encode(),
        )
        for t in tokens
    ]


async def measure(endpoint: str, requests: int, concurrency: int) -> dict[str, Any]:
    """One measurement; the figures as a dict."""
    name = f"bench_api_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        amqp_url=AMQP_URL, redis_url=REDIS_URL, namespace=name, key_prefix=name, log_level="WARNING"
    )
    port = _free_port()
    env = {
        **os.environ,
        "ORCH_SERV_AMQP_URL": AMQP_URL,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_NAMESPACE": name,
        "ORCH_SERV_KEY_PREFIX": name,
        "ORCH_SERV_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orch_serv", "api", "--port", str(port), env=env,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await _healthy(url, process)
        orchestrator = Orchestrator(flows=[EchoFlow], services=[echo])
        async with orchestrator.run(settings, with_services=True) as running:
            run_id = await running.start("echo", {"hello": "world"})
            record = await running.wait(run_id, timeout=60)
            assert record.state is RunState.SUCCEEDED, record
        redis = aioredis.Redis.from_url(REDIS_URL)
        try:
            scopes = {Scope.read, Scope.start, Scope.operate}
            token, _ = await TokenStore(redis, name).create("bench", scopes)
        finally:
            await redis.aclose()
        if endpoint == "run":
            read: Request = ("GET", f"/v1/runs/{run_id}", None)
            warm, load = [read] * min(200, requests), [read] * requests
        else:
            made = await _instances(url, token, requests + min(200, requests), concurrency)
            warm, load = _set_started(made[requests:]), _set_started(made[:requests])
        await _hammer(url, warm, token, concurrency)  # warm up
        watched = {"server": psutil.Process(process.pid), **server_processes()}
        driver = psutil.Process()
        before = {k: sum(p.cpu_times()[:2]) for k, p in watched.items()}
        driver_before = sum(driver.cpu_times()[:2])
        started = time.perf_counter()
        latencies, statuses = await _hammer(url, load, token, concurrency)
        seconds = time.perf_counter() - started
        cpu = {k: sum(p.cpu_times()[:2]) - before[k] for k, p in watched.items()}
        cpu["load_generator"] = sum(driver.cpu_times()[:2]) - driver_before
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        await _cleanup(settings)
    if set(statuses) != {200}:
        raise RuntimeError(f"not every answer was a 200: {statuses}")
    return {
        "endpoint": "GET /v1/runs/{id}" if endpoint == "run" else "POST statusek setStatus",
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 1),
        "latency_ms_p50": round(percentile(latencies, 50), 3),
        "latency_ms_p99": round(percentile(latencies, 99), 3),
        "cpu_percent": {k: round(100 * v / seconds, 1) for k, v in cpu.items()},
        "server_cpu_ms_per_request": round(1000 * cpu["server"] / requests, 3),
        "cpus": psutil.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", choices=["run", "setstatus"], default="run")
    parser.add_argument("--requests", type=int, default=5000, help="Requests to send (1..10^6).")
    parser.add_argument("--concurrency", type=int, default=16, help="Connections (1..512).")
    parser.add_argument("--out", type=Path, help="Also write api_load.json in this directory.")
    args = parser.parse_args()
    if not 1 <= args.requests <= 1_000_000 or not 1 <= args.concurrency <= 512:
        parser.error("--requests must be 1..1000000 and --concurrency 1..512")
    result = asyncio.run(measure(args.endpoint, args.requests, args.concurrency))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"api_load_{args.endpoint}.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
