"""The failure commands of the real ``orch-serv`` CLI: ``retry``, ``cancel`` and ``dlq``.

Run as subprocesses against RabbitMQ and Redis, in the style of ``test_cli.py``: each test
has a namespace and key prefix of its own (``ORCH_SERV_NAMESPACE``, ``ORCH_SERV_KEY_PREFIX``),
removed afterwards with every queue and exchange it declared. ``orch-serv dev
tests.apps.failing:orchestrator`` runs in the background; readiness and every later
condition are polled under a deadline, never waited for with a fixed sleep.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import aio_pika
import pytest
import redis

from orch_serv import Settings
from orch_serv.transport.base import Topology
from tests.apps.failing import FLOWS, SERVICE
from tests.conftest import AMQP_URL, REDIS_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ORCH_SERV = Path(sys.executable).parent / "orch-serv"
APP = "tests.apps.failing:orchestrator"
READY_SECONDS = 20.0  # deadline of the background command's readiness
STOP_SECONDS = 15.0  # deadline of its exit after SIGTERM
CALL_SECONDS = 60.0  # deadline of one foreground command
POLL_SECONDS = 20.0  # deadline of a condition polled after a command
RUN_SECONDS = "30"  # --timeout of `start --wait` / `retry --wait`
T = TypeVar("T")


# -- running the CLI (helpers copied from test_cli.py) ---------------------------------------
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
    handles: list[IO[bytes]] = field(default_factory=list)

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
        try:
            if self.running():
                self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"no exit {STOP_SECONDS} s after SIGTERM\n{self.output()}")
        finally:
            for handle in self.handles:
                handle.close()


class Cli:
    """``orch-serv`` in one test's namespace, run from the repository root."""

    def __init__(self, prefix: str, tmp_path: Path) -> None:
        self.prefix = prefix
        self.tmp_path = tmp_path
        self.settings = Settings(
            amqp_url=AMQP_URL, redis_url=REDIS_URL, namespace=prefix, key_prefix=prefix
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

    def __call__(self, *args: str, timeout: float = CALL_SECONDS) -> Result:
        done = subprocess.run(
            [str(ORCH_SERV), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(args, done.returncode, done.stdout, done.stderr)

    def spawn(self, *args: str) -> Background:
        name = f"{args[0]}-{len(self.background)}"
        stdout, stderr = self.tmp_path / f"{name}.out", self.tmp_path / f"{name}.err"
        out, err = stdout.open("wb"), stderr.open("wb")
        process = subprocess.Popen(
            [str(ORCH_SERV), *args], cwd=ROOT, env=self.env, stdout=out, stderr=err
        )
        started = Background(args, process, stdout, stderr, [out, err])
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

    def serve_dev(self) -> Background:
        """``orch-serv dev tests.apps.failing:orchestrator``, once it serves its flows and
        every queue it uses has a consumer."""
        proc = self.spawn("dev", APP)
        self.wait_until(
            proc, f"serving flows {FLOWS}", lambda: set(FLOWS) <= self.registered_flows()
        )
        queues = [self.topology.orchestrator_queue, self.topology.service_queue(SERVICE)]

        def consumed() -> bool:
            counts = asyncio.run(consumer_counts(AMQP_URL, queues))
            return all(counts[q] > 0 for q in queues)

        self.wait_until(proc, f"consuming {queues}", consumed)
        return proc

    def history(self, run_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self(
            "status", run_id, "--history", "--format", "json"
        ).json()["events"]
        return events

    def dead_letters(self) -> list[dict[str, Any]]:
        letters: list[dict[str, Any]] = self("dlq", "list", "--format", "json").json()
        return letters


def poll(what: str, check: Callable[[], T | None], proc: Background) -> T:
    """Call ``check`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} within {POLL_SECONDS} s\n{proc.output()}")
        time.sleep(0.05)  # polling interval, not synchronisation


async def consumer_counts(url: str, queues: list[str]) -> dict[str, int]:
    """How many consumers each queue has (0 for a queue that does not exist yet)."""
    counts: dict[str, int] = {}
    connection = await aio_pika.connect(url)
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


async def remove_queues_and_exchanges(settings: Settings) -> None:
    topology = Topology(settings.namespace)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in (
            topology.orchestrator_queue,
            topology.dead_letter_queue,
            topology.service_queue(SERVICE),
        ):
            await channel.queue_delete(queue)
        for exchange in (
            topology.exchange,
            topology.dead_letter_exchange,
            topology.control_exchange,
        ):
            await channel.exchange_delete(exchange)


def remove_keys(settings: Settings) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in a fresh namespace; background commands are stopped and the namespace's
    queues, exchanges and Redis keys removed afterwards."""
    runner = Cli(f"t_clif_{uuid.uuid4().hex[:8]}", tmp_path)
    try:
        yield runner
    finally:
        try:
            for proc in runner.background:
                if proc.running():
                    proc.stop()
        finally:
            asyncio.run(remove_queues_and_exchanges(runner.settings))
            remove_keys(runner.settings)


@pytest.fixture
def dev(cli: Cli) -> Iterator[Background]:
    """``orch-serv dev tests.apps.failing:orchestrator``, ready; must exit 0 on SIGTERM."""
    proc = cli.serve_dev()
    yield proc
    if proc.running():
        code = proc.stop()
        assert code == 0, proc.output()


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


# -- retry -----------------------------------------------------------------------------------
def test_retry_resumes_a_failed_run_until_it_succeeds(
    cli: Cli, dev: Background, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    failed = cli(
        "start",
        "sometimes",
        "--body",
        json.dumps({"marker": str(marker)}),
        "--wait",
        "--timeout",
        RUN_SECONDS,
        "--format",
        "json",
    )
    assert failed.returncode == 1, (failed, dev.output())
    doc = json.loads(failed.stdout)
    run_id = doc["id"]
    assert (doc["done"], doc["state"], doc["attempt"]) == (True, "FAILED", 1)
    assert doc["error"]["type"] == "MarkerMissing"
    assert doc["error"]["retryable"] is True  # retryable, but the flow has no retry policy
    assert not marker.exists()  # the failing handler created nothing

    marker.touch()
    retried = cli("retry", run_id, "--wait", "--timeout", RUN_SECONDS, "--format", "json")

    assert retried.returncode == 0, (retried, dev.output())
    final = retried.json()
    assert list(final)[:4] == ["done", "id", "state", "status"]
    assert (final["done"], final["id"], final["state"], final["status"]) == (
        True,
        run_id,
        "SUCCEEDED",
        "OK",
    )
    assert (final["attempt"], final["error"]) == (2, None)
    assert final["result"] == {"marker": str(marker), "seen": "yes"}

    history = cli("status", run_id, "--history", "--format", "json").json()
    assert history["run"] == final
    events = history["events"]
    assert kinds(events) == [
        "run_created",
        "run_started",
        "step_dispatched",
        "step_failed",
        "run_failed",
        "run_resumed",
        "step_dispatched",
        "step_completed",
        "run_succeeded",
    ]
    [resumed] = [e for e in events if e["kind"] == "run_resumed"]
    assert (resumed["step"], resumed["attempt"], resumed["component"]) == (0, 2, "client")
    step_events = [e for e in events if e["kind"] in ("step_failed", "step_completed")]
    assert [(e["kind"], e["attempt"], e["status"]) for e in step_events] == [
        ("step_failed", 1, "FAILED"),
        ("step_completed", 2, "OK"),
    ]
    assert step_events[0]["error"]["type"] == "MarkerMissing"
    dispatched = [e["message_id"] for e in events if e["kind"] == "step_dispatched"]
    assert dispatched == [f"{run_id}:0:1", f"{run_id}:0:2"]


def test_retry_of_a_succeeded_run_exits_1(cli: Cli, dev: Background, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    done = cli(
        "start",
        "sometimes",
        "--body",
        json.dumps({"marker": str(marker)}),
        "--wait",
        "--timeout",
        RUN_SECONDS,
        "--format",
        "json",
    )
    assert done.returncode == 0, (done, dev.output())
    run_id = done.json()["id"]

    result = cli("retry", run_id, "--format", "json")
    assert result.returncode == 1, result
    assert result.error == (
        f"error: only FAILED or TIMED_OUT runs can be retried; {run_id!r} is SUCCEEDED"
    ), result
    assert result.stdout == ""
    # nothing changed
    events = cli.history(run_id)
    assert kinds(events)[-1] == "run_succeeded"
    assert "run_resumed" not in kinds(events)


@pytest.mark.parametrize("wait", [[], ["--wait"]])
def test_retry_of_an_unknown_run_exits_1(cli: Cli, wait: list[str]) -> None:
    result = cli("retry", "0123456789abcdef", *wait)
    assert result.returncode == 1, result
    assert result.error == "error: run '0123456789abcdef' not found", result
    assert result.stdout == ""


# -- cancel ----------------------------------------------------------------------------------
def test_cancel_stops_a_stuck_handler_and_records_its_late_result(
    cli: Cli, dev: Background, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    result = cli("start", "forever", "--body", json.dumps({"started": str(started)}))
    assert result.returncode == 0, result
    run_id = result.stdout.strip()
    # The handler touches the file once it runs: from then on a cancel notice reaches it.
    poll("running the forever handler", started.exists, dev)
    assert cli("status", run_id, "--format", "json").json()["state"] == "RUNNING"

    cancelled = cli("cancel", run_id, "--format", "json")

    assert cancelled.returncode == 0, (cancelled, dev.output())
    doc = cancelled.json()
    assert list(doc)[:4] == ["done", "id", "state", "status"]
    assert (doc["done"], doc["id"], doc["state"]) == (True, run_id, "CANCELLED")
    assert doc["finished_at"] is not None

    def late_result() -> list[dict[str, Any]]:
        events = cli.history(run_id)
        return events if "late_result" in kinds(events) else []

    events = poll("recording the cancelled handler's late result", late_result, dev)
    assert kinds(events)[:3] == ["run_created", "run_started", "step_dispatched"]
    [cancel_event] = [e for e in events if e["kind"] == "run_cancelled"]
    assert cancel_event["component"] == "client"
    assert cancel_event["reason"] == "cancelled by request"
    [late] = [e for e in events if e["kind"] == "late_result"]
    assert late["seq"] > cancel_event["seq"]
    assert (late["step"], late["attempt"], late["component"]) == (0, 1, SERVICE)
    assert late["reason"] == "run_finished"
    assert late["message_id"] == f"{run_id}:0:1:reply"
    assert late["error"]["type"] == "Cancelled"
    assert "step_failed" not in kinds(events)  # the reply did not move the run

    status = cli("status", run_id, "--format", "json").json()
    assert (status["state"], status["done"]) == ("CANCELLED", True)

    again = cli("cancel", run_id, "--format", "json")
    assert again.returncode == 1, again
    assert again.error == f"error: run {run_id!r} is already CANCELLED", again
    assert again.stdout == ""


def test_cancel_of_an_unknown_run_exits_1(cli: Cli) -> None:
    result = cli("cancel", "0123456789abcdef")
    assert result.returncode == 1, result
    assert result.error == "error: run '0123456789abcdef' not found", result


# -- dead letters ----------------------------------------------------------------------------
def test_dlq_list_show_replay_purge(cli: Cli, dev: Background) -> None:
    topology = cli.topology
    asyncio.run(publish_raw(cli.settings, topology.orchestrator_key, b"{not json"))
    asyncio.run(publish_raw(cli.settings, topology.service_key(SERVICE), b"[1, 2"))

    def both() -> list[dict[str, Any]]:
        letters = cli.dead_letters()
        return letters if len(letters) == 2 else []

    letters = poll("dead-lettering both messages", both, dev)
    by_queue = {d["queue"]: d for d in letters}
    assert set(by_queue) == {topology.orchestrator_queue, topology.service_queue(SERVICE)}
    orch = by_queue[topology.orchestrator_queue]
    svc = by_queue[topology.service_queue(SERVICE)]
    assert orch["routing_key"] == "orchestrator" and svc["routing_key"] == f"svc.{SERVICE}"
    for letter in letters:
        assert letter["reason"].startswith("malformed JSON: "), letter
        assert set(letter) == {"id", "reason", "queue", "routing_key", "kind", "size"}
    assert (orch["size"], svc["size"]) == (len(b"{not json"), len(b"[1, 2"))
    assert orch["id"] != svc["id"]

    table = cli("dlq", "list")
    assert table.returncode == 0, table
    assert "Dead letters (2)" in table.stdout
    assert orch["id"] in table.stdout and svc["id"] in table.stdout

    shown = cli("dlq", "show", orch["id"]).json()
    assert {k: shown[k] for k in orch} == orch
    assert shown["body"] == "{not json"
    headers = shown["headers"]
    assert headers["x-orch-serv-dead-id"] == orch["id"]
    assert headers["x-orch-serv-origin-queue"] == topology.orchestrator_queue
    assert headers["x-orch-serv-origin-routing-key"] == "orchestrator"
    assert headers["x-orch-serv-reason"] == orch["reason"]

    # Replayed, the still-malformed message is dead-lettered again: under a new id, not lost.
    replay = cli("dlq", "replay", orch["id"])
    assert replay.returncode == 0, replay
    assert replay.stdout.strip() == "replayed 1 dead letter(s)"

    def replaced() -> list[dict[str, Any]]:
        now = cli.dead_letters()
        ids = {d["id"] for d in now}
        return now if len(now) == 2 and orch["id"] not in ids else []

    after = poll("dead-lettering the replayed message again", replaced, dev)
    again = {d["queue"]: d for d in after}
    assert again[topology.service_queue(SERVICE)] == svc  # untouched
    renewed = again[topology.orchestrator_queue]
    assert renewed["id"] != orch["id"]
    assert {k: v for k, v in renewed.items() if k != "id"} == {
        k: v for k, v in orch.items() if k != "id"
    }
    assert len(cli.dead_letters()) == 2  # stable: nothing lost, nothing duplicated

    purge = cli("dlq", "purge", "--all")
    assert purge.returncode == 0, purge
    assert purge.stdout.strip() == "purged 2 dead letter(s)"
    assert cli.dead_letters() == []


def test_dlq_replay_and_purge_need_ids_or_all(cli: Cli) -> None:
    for command in ("replay", "purge"):
        result = cli("dlq", command)
        assert result.returncode == 2, result
        assert result.error == "error: give dead-letter ids, or --all", result


def test_dlq_show_of_an_unknown_id_exits_1(cli: Cli) -> None:
    result = cli("dlq", "show", "unknown-id")
    assert result.returncode == 1, result
    assert result.error == "error: dead letter 'unknown-id' not found", result
    assert result.stdout == ""


def test_retry_after_a_pre_hook_failure_sends_the_runs_input(
    cli: Cli, dev: Background, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    failed = cli(
        "start",
        "hooked",
        "--body",
        json.dumps({"marker": str(marker)}),
        "--wait",
        "--timeout",
        RUN_SECONDS,
        "--format",
        "json",
    )
    assert failed.returncode == 1, (failed, dev.output())
    doc = json.loads(failed.stdout)
    assert (doc["state"], doc["error"]["type"]) == ("FAILED", "HookError")

    marker.touch()
    retried = cli("retry", doc["id"], "--wait", "--timeout", RUN_SECONDS, "--format", "json")

    final = json.loads(retried.stdout)
    assert (retried.returncode, final["state"], final["error"]) == (0, "SUCCEEDED", None), final
    assert final["result"] == {"marker": str(marker), "seen": "yes"}
