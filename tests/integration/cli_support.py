"""Running the real ``orch-serv`` in subprocesses against RabbitMQ and Redis (shared by the
CLI test files).

Each test gets a :class:`Cli` with a namespace and key prefix of its own
(``ORCH_SERV_NAMESPACE`` and ``ORCH_SERV_KEY_PREFIX``), removed afterwards with the queues
and exchanges it declared. Long-running commands (``dev``, ``orchestrator``, ``service``)
run in the background, are waited for by polling a readiness condition under a deadline,
and must exit 0 on SIGTERM. Tables are read with ``COLUMNS`` set wide, so that rich does not
fold their cells.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import aio_pika.exceptions
import pytest
import redis

from orch_serv import Settings
from orch_serv.backends import open_transport
from orch_serv.transport.base import Topology
from tests.conftest import AMQP_URL, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
ORCH_SERV = Path(sys.executable).parent / "orch-serv"
READY_SECONDS = 20.0  # deadline of a background command's readiness
STOP_SECONDS = 15.0  # deadline of its exit after SIGTERM
CALL_SECONDS = 60.0  # deadline of one foreground command
POLL_SECONDS = 20.0  # deadline of a condition polled after a command
RUN_SECONDS = "30"  # --timeout of `start --wait` / `retry --wait`
T = TypeVar("T")


@dataclass
class Result:
    """A finished foreground command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, self
        return json.loads(self.stdout)

    @property
    def error(self) -> str:
        """stderr with rich's line wrapping undone."""
        return " ".join(self.stderr.split())


@dataclass
class Background:
    """A long-running command, its output going to files (a pipe nobody reads can fill)."""

    args: tuple[str, ...]
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return (
            f"$ orch-serv {' '.join(self.args)} (exit {self.process.poll()})\n"
            f"--- stdout\n{self.stdout.read_text(errors='replace')}\n"
            f"--- stderr\n{self.stderr.read_text(errors='replace')[-8000:]}"
        )

    def stop(self) -> int:
        """SIGTERM, then the exit code (killed and failed if it does not exit in time)."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"no exit {STOP_SECONDS} s after SIGTERM\n{self.output()}")


@dataclass(frozen=True)
class App:
    """An application the tests serve with ``orch-serv dev``: its import path, the flows it
    registers and the services it hosts."""

    path: str
    flows: tuple[str, ...]
    services: tuple[str, ...]


class Cli:
    """``orch-serv`` in one test's namespace, run from the repository root."""

    def __init__(self, prefix: str, tmp_path: Path, app: App) -> None:
        self.prefix = prefix
        self.tmp_path = tmp_path
        self.app = app
        self.settings = Settings(
            namespace=prefix, key_prefix=prefix, amqp_url=AMQP_URL, redis_url=REDIS_URL
        )
        self.topology = Topology(prefix)
        env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
        # The URLs are given explicitly: unset, `dev` would run on its embedded backends,
        # which the other commands cannot see.
        env.update(
            ORCH_SERV_AMQP_URL=AMQP_URL,
            ORCH_SERV_REDIS_URL=REDIS_URL,
            ORCH_SERV_NAMESPACE=prefix,
            ORCH_SERV_KEY_PREFIX=prefix,
            ORCH_SERV_SHUTDOWN_GRACE_SECONDS="5",
            COLUMNS="1000",
            NO_COLOR="1",
        )
        self.env = env
        self.background: list[Background] = []

    def __call__(
        self,
        *args: str,
        timeout: float = CALL_SECONDS,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> Result:
        done = subprocess.run(
            [str(ORCH_SERV), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(args, done.returncode, done.stdout, done.stderr)

    def spawn(self, *args: str) -> Background:
        name = f"{args[0]}-{len(self.background)}"
        stdout, stderr = self.tmp_path / f"{name}.out", self.tmp_path / f"{name}.err"
        # the child writes to its own copies of the descriptors: ours close once it has them
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [str(ORCH_SERV), *args], cwd=ROOT, env=self.env, stdout=out, stderr=err
            )
        started = Background(args, process, stdout, stderr)
        self.background.append(started)
        return started

    def registered_flows(self) -> set[str]:
        result = self("flows", "--format", "json")
        assert result.returncode == 0, result
        return {s["name"] for s in json.loads(result.stdout) if s["kind"] == "flow"}

    def wait_until(self, proc: Background, what: str, ready: Callable[[], Any]) -> None:
        """Poll ``ready()`` until it is true; fail at the deadline or if ``proc`` exits."""
        deadline = time.monotonic() + READY_SECONDS
        while not ready():
            if not proc.running():
                pytest.fail(f"exited before {what}\n{proc.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"not {what} within {READY_SECONDS} s\n{proc.output()}")
            time.sleep(0.05)  # polling interval, not synchronisation

    def wait_for_flow(self, proc: Background, flow: str) -> None:
        self.wait_until(proc, f"serving flow {flow!r}", lambda: flow in self.registered_flows())

    def wait_for_consumers(self, proc: Background, queues: Sequence[str]) -> None:
        def consumed() -> bool:
            counts = asyncio.run(consumer_counts(queues))
            return all(counts[q] > 0 for q in queues)

        self.wait_until(proc, f"consuming {list(queues)}", consumed)

    def serve_dev(self) -> Background:
        """``orch-serv dev APP``, returned once it serves the app's flows and every queue it
        uses has a consumer."""
        proc = self.spawn("dev", self.app.path)
        flows = set(self.app.flows)
        self.wait_until(proc, f"serving flows {flows}", lambda: flows <= self.registered_flows())
        queues = [self.topology.orchestrator_queue]
        queues += [self.topology.service_queue(s) for s in self.app.services]
        self.wait_for_consumers(proc, queues)
        return proc

    def history(self, run_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self(
            "status", run_id, "--history", "--format", "json"
        ).json()["events"]
        return events

    def dead_letters(self) -> list[dict[str, Any]]:
        letters: list[dict[str, Any]] = self("dlq", "list", "--format", "json").json()
        return letters


@contextmanager
def cli_in_namespace(stem: str, tmp_path: Path, app: App) -> Iterator[Cli]:
    """A :class:`Cli` in a fresh namespace; afterwards its background commands are stopped
    and the namespace's queues, exchanges and Redis keys removed."""
    runner = Cli(f"{stem}_{uuid.uuid4().hex[:8]}", tmp_path, app)
    try:
        yield runner
    finally:
        try:
            for proc in runner.background:
                if proc.running():
                    proc.stop()
        finally:
            asyncio.run(remove_queues_and_exchanges(runner.settings, app.services))
            remove_keys(runner.settings)


def serve_dev_until_done(cli: Cli) -> Iterator[Background]:
    """The body of a ``dev`` fixture: ``orch-serv dev`` ready; must exit 0 on SIGTERM."""
    proc = cli.serve_dev()
    yield proc
    if proc.running():
        code = proc.stop()
        assert code == 0, proc.output()


def poll(what: str, check: Callable[[], T | None], proc: Background | None = None) -> T:
    """Call ``check`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} within {POLL_SECONDS} s\n{proc.output() if proc else ''}")
        time.sleep(0.05)  # polling interval, not synchronisation


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table (rows whose first cell is not empty)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if cells[0]:
                rows.append(cells)
    return rows


async def consumer_counts(queues: Sequence[str]) -> dict[str, int]:
    """How many consumers each queue has (0 for a queue that does not exist yet)."""
    counts: dict[str, int] = {}
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for queue in queues:
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(queue, passive=True)
                counts[queue] = declared.declaration_result.consumer_count or 0
            except aio_pika.exceptions.ChannelClosed:  # 404: not declared yet
                counts[queue] = 0
            finally:
                if not channel.is_closed:
                    await channel.close()
    return counts


async def existing(queues: Sequence[str] = (), exchanges: Sequence[str] = ()) -> set[str]:
    """Which of these queues and exchanges RabbitMQ has (passive declares create nothing)."""
    found: set[str] = set()
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for name, is_queue in [(q, True) for q in queues] + [(e, False) for e in exchanges]:
            channel = await connection.channel()
            try:
                if is_queue:
                    await channel.declare_queue(name, passive=True)
                else:
                    await channel.declare_exchange(name, passive=True)
                found.add(name)
            except aio_pika.exceptions.ChannelClosed:  # 404
                pass
            finally:
                if not channel.is_closed:
                    await channel.close()
    return found


async def declare_namespace(settings: Settings) -> None:
    """Create the namespace's exchanges and dead-letter queue, as any orch_serv process does."""
    transport = await open_transport(settings)
    await transport.close()


async def publish_raw(settings: Settings, routing_key: str, body: bytes) -> None:
    """Publish bytes to the namespace's main exchange (not the default exchange), as a
    foreign or broken producer would."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(settings.namespace)
        await exchange.publish(
            aio_pika.Message(body, content_type="application/json"), routing_key, mandatory=True
        )


async def remove_queues_and_exchanges(settings: Settings, services: Sequence[str]) -> None:
    """Delete the namespace's queues (of these services) and exchanges."""
    topology = Topology(settings.namespace)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queues = [topology.orchestrator_queue, topology.dead_letter_queue]
        queues += [topology.service_queue(s) for s in services]
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in (
            topology.exchange,
            topology.dead_letter_exchange,
            topology.control_exchange,
        ):
            await channel.exchange_delete(exchange)


def remove_keys(settings: Settings) -> None:
    """Delete the namespace's Redis keys."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
