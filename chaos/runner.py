"""A chaos session: start the processes (behind the proxies), start the runs, SIGKILL
processes and cut connections (and, on the local clusters, stop nodes) until every run is
terminal or the drain timeout passes, then read every run back. Everything it started is
stopped, and its keys and queues removed, however it ends (Ctrl-C included)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chaos.app import FLOW
from chaos.audit import Report, audit
from chaos.environment import (
    broker_address,
    cleanup,
    dead_letters,
    process_env,
    through_proxy,
    wait_ready,
)
from chaos.loop import Chaos
from chaos.nodes import NodeFailures
from chaos.processes import Fleet
from chaos.proxy import ProxyProcess
from orch_serv.backends import open_backends
from orch_serv.constants import TERMINAL_STATES
from orch_serv.orchestrator.client import Client
from orch_serv.settings import LOCAL_AMQP_URL, LOCAL_REDIS_URL, Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.shape import Field
from orch_serv.urls import split_urls

Progress = Callable[[str], None]
#: Terminal states as the run hash holds them (bytes or str, as the client decodes).
TERMINAL = {s.value for s in TERMINAL_STATES} | {s.value.encode() for s in TERMINAL_STATES}


def _stderr(line: str) -> None:
    print(f"chaos: {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ChaosConfig:
    """What a session does (``python -m chaos --help`` describes each option)."""

    runs: int = 10_000
    orchestrators: int = 2
    services: int = 2
    #: Mean seconds between two SIGKILLs (0: none).
    kill_every: float = 3.0
    #: Mean seconds between two connection cuts (0: none); at most ``max_cuts`` (None: no limit).
    cut_every: float = 5.0
    max_cuts: int | None = None
    proxy: bool = True
    #: Runs started per second (0: as fast as the client goes).
    rate: float = 200.0
    drain_timeout: float = 600.0
    #: One RabbitMQ URL, or several separated by commas (the nodes of a cluster).
    amqp_url: str = LOCAL_AMQP_URL
    redis_url: str = LOCAL_REDIS_URL
    prefix: str = field(default_factory=lambda: f"chaos_{uuid.uuid4().hex[:8]}")
    seed: int | None = None
    #: Where the processes' stderr goes (default: a temporary directory, removed when the
    #: session ends well and kept, with its path printed, when it does not).
    log_dir: Path | None = None
    ready_timeout: float = 60.0
    #: On the local clusters of scripts/cluster.sh: quorum queues, and a node failure every
    #: ``node_every`` seconds (0: none), each node down ``node_down`` seconds; Redis
    #: primaries are stopped too when ``redis_url`` is the Redis Cluster's.
    cluster: bool = False
    node_every: float = 20.0
    node_down: float = 10.0
    redis_cluster: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.runs >= 1, "runs must be >= 1"),
            (self.orchestrators >= 1, "orchestrators must be >= 1"),
            (self.services >= 1, "services must be >= 1"),
            (self.kill_every >= 0, "kill_every must be >= 0 seconds"),
            (self.cut_every >= 0, "cut_every must be >= 0 seconds"),
            (self.max_cuts is None or self.max_cuts >= 0, "max_cuts must be >= 0"),
            (self.rate >= 0, "rate must be >= 0"),
            (self.drain_timeout > 0, "drain_timeout must be > 0 seconds"),
            (self.node_every >= 0, "node_every must be >= 0 seconds"),
            (self.node_down > 0, "node_down must be > 0 seconds"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        for url in split_urls(self.amqp_url) or [self.amqp_url]:
            broker_address(url)
        self.settings()

    def settings(self) -> Settings:
        """The driver's settings (the processes get the same through the environment)."""
        return Settings(
            amqp_url=self.amqp_url,
            redis_url=self.redis_url,
            namespace=self.prefix,
            key_prefix=self.prefix,
            quorum_queues=self.cluster,
        )


async def start_runs(
    client: Client, count: int, rate: float, report: Report, progress: Progress
) -> dict[str, int]:
    """Start ``count`` runs (``{"n": i}``, idempotency key per i, a failed start tried
    again up to 3 times) at ``rate`` a second; run id -> i."""
    started: dict[str, int] = {}
    slots = asyncio.Semaphore(64)
    loop = asyncio.get_running_loop()
    begin = loop.time()
    key_stem = uuid.uuid4().hex[:8]

    async def one(i: int) -> None:
        async with slots:
            for attempt in range(3):
                try:
                    started[await client.start(FLOW, {"n": i}, key=f"{key_stem}-{i}")] = i
                    return
                except Exception as exc:  # a start that fails is counted, not fatal
                    if attempt == 2:
                        report.start_errors += 1
                        progress(f"start {i} failed: {exc!r}")

    tasks = []
    for i in range(count):
        if rate > 0 and (delay := begin + i / rate - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return started


async def active(store: RedisRunStore, run_ids: Iterable[str]) -> set[str]:
    """The runs of ``run_ids`` that are not terminal (or not found)."""
    ids = list(run_ids)
    remaining: set[str] = set()
    for i in range(0, len(ids), 2000):
        chunk = ids[i : i + 2000]
        pipe = store.redis.pipeline(transaction=False)
        for run_id in chunk:
            pipe.hget(store.keys.run(run_id), Field.STATE)
        states = await pipe.execute()
        remaining.update(
            rid for rid, state in zip(chunk, states, strict=True) if state not in TERMINAL
        )
    return remaining


async def drain(
    store: RedisRunStore,
    run_ids: Iterable[str],
    timeout: float,
    progress: Progress,
    chaos: asyncio.Task[None] | None = None,
) -> bool:
    """Wait until every run is terminal (True) or ``timeout`` passes (False). A chaos loop
    that failed fails the wait (no session goes on without its chaos unnoticed)."""
    pending = set(run_ids)
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while pending:
        if chaos is not None and chaos.done():
            chaos.result()  # raises what stopped it
        pending = await active(store, pending)
        if not pending:
            break
        if time.monotonic() >= deadline:
            return False
        if time.monotonic() - last_report >= 5:
            progress(f"{len(pending)} runs not finished yet")
            last_report = time.monotonic()
        await asyncio.sleep(1.0)
    return True


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
    if task is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def session(config: ChaosConfig, progress: Progress = _stderr) -> Report:
    """Run one chaos session and return its report."""
    report = Report()
    log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix="chaos-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = config.settings()
    proxies: list[ProxyProcess] = []
    fleet: Fleet | None = None
    chaos_task: asyncio.Task[None] | None = None
    interrupted = False
    try:
        child_urls = split_urls(config.amqp_url)
        if config.proxy:
            for url in split_urls(config.amqp_url):
                proxies.append(await ProxyProcess.start(*broker_address(url)))
            child_urls = [
                through_proxy(u, p.port) for u, p in zip(child_urls, proxies, strict=True)
            ]
        env = process_env(",".join(child_urls), config.redis_url, config.prefix)
        env["ORCH_SERV_QUORUM_QUEUES"] = "true" if config.cluster else "false"  # as the driver
        fleet = Fleet(env, config.orchestrators, config.services, log_dir)
        await fleet.start()
        async with open_backends(settings) as (transport, store):
            await wait_ready(
                config.amqp_url,
                store,
                config.prefix,
                config.orchestrators,
                config.services,
                config.ready_timeout,
            )
            progress(
                f"{config.orchestrators} orchestrators and {config.services} services up "
                f"(prefix {config.prefix}); starting {config.runs} runs"
            )
            rng = random.Random(config.seed)
            nodes = None
            if config.cluster:
                nodes = NodeFailures(rng, redis=config.redis_cluster, down=config.node_down)
            chaos = Chaos(
                fleet,
                proxies,
                progress,
                kill_every=config.kill_every,
                cut_every=config.cut_every,
                max_cuts=config.max_cuts,
                nodes=nodes,
                node_every=config.node_every,
                seed=config.seed,
            )
            chaos_task = asyncio.create_task(chaos.run())
            begin = time.monotonic()
            started = await start_runs(
                Client(transport, store), config.runs, config.rate, report, progress
            )
            progress(f"{len(started)} runs started; draining")
            if await drain(store, started, config.drain_timeout, progress, chaos_task):
                report.drain_seconds = round(time.monotonic() - begin, 1)
            await _stop(chaos_task)
            await fleet.stop()
            report.kills = fleet.kills
            report.unexpected_exits = list(fleet.unexpected_exits)
            report.cuts, report.connections_cut = chaos.cuts, chaos.connections_cut
            report.nodes_stopped = [] if nodes is None else list(nodes.stopped)
            report.dead_letters = await dead_letters(config.amqp_url, config.prefix)
            await audit(store, started, report)
    except asyncio.CancelledError:  # Ctrl-C, SIGTERM: nothing to look at afterwards
        interrupted = True
        raise
    finally:
        await _stop(chaos_task)
        if fleet is not None:
            await fleet.stop()
        for proxy in proxies:
            await proxy.stop()
        try:
            await cleanup(config.amqp_url, config.redis_url, config.prefix)
        except Exception as exc:  # reported, and never hides what ended the session
            progress(f"could not remove the keys and queues of {config.prefix}: {exc!r}")
        if config.log_dir is None:
            clean = report.ok and report.runs and not report.unexpected_exits
            if interrupted or clean:
                shutil.rmtree(log_dir, ignore_errors=True)
            else:
                progress(f"process logs kept in {log_dir}")
    return report
