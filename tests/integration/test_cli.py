"""The real ``orch-serv`` command line, run as subprocesses against RabbitMQ and Redis.

Each test has a namespace and key prefix of its own (``ORCH_SERV_NAMESPACE`` and
``ORCH_SERV_KEY_PREFIX``), removed afterwards with the queues and exchanges it declared.
Long-running commands (``dev``, ``orchestrator``, ``service``) run in the background, are
waited for by polling a readiness condition under a deadline, and must exit 0 on SIGTERM.
Tables are read with ``COLUMNS`` set wide, so that rich does not fold their cells.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aio_pika
import aio_pika.exceptions
import pytest
import redis

from orch_serv import Settings
from orch_serv.transport.base import Topology
from services_examples import DATA_DIR
from tests.conftest import AMQP_URL, REDIS_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ORCH_SERV = Path(sys.executable).parent / "orch-serv"
APP = "flows.ingest:orchestrator"
SERVICES = ("validator", "transformer", "publisher")
READY_SECONDS = 20.0  # deadline of a background command's readiness
STOP_SECONDS = 15.0  # deadline of its exit after SIGTERM
CALL_SECONDS = 60.0  # deadline of one foreground command
RUN_SECONDS = "30"  # --timeout of `start --wait`


# -- running the CLI -------------------------------------------------------------------------
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
            namespace=prefix, key_prefix=prefix, amqp_url=AMQP_URL, redis_url=REDIS_URL
        )
        env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
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

    def wait_until(self, proc: Background, what: str, ready: Any) -> None:
        """Poll ``ready()`` until it is true; fail at the deadline or if ``proc`` exits."""
        deadline = time.monotonic() + READY_SECONDS
        while not ready():
            if not proc.running():
                pytest.fail(f"exited before {what}\n{proc.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"not {what} within {READY_SECONDS} s\n{proc.output()}")
            time.sleep(0.05)  # polling interval, not synchronisation

    def wait_for_flow(self, proc: Background, flow: str = "ingest") -> None:
        self.wait_until(proc, f"serving flow {flow!r}", lambda: flow in self.registered_flows())

    def wait_for_consumers(self, proc: Background, queues: list[str]) -> None:
        def consumed() -> bool:
            counts = asyncio.run(consumer_counts(self.settings.amqp_url, queues))
            return all(counts[q] > 0 for q in queues)

        self.wait_until(proc, f"consuming {queues}", consumed)

    def serve_dev(self) -> Background:
        """``orch-serv dev APP``, returned once it serves the ingest flow."""
        proc = self.spawn("dev", APP)
        self.wait_for_flow(proc)
        topology = Topology(self.prefix)
        queues = [topology.orchestrator_queue, *(topology.service_queue(s) for s in SERVICES)]
        self.wait_for_consumers(proc, queues)
        return proc


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


async def remove_queues_and_exchanges(settings: Settings) -> None:
    topology = Topology(settings.namespace)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        queues = [topology.orchestrator_queue, topology.dead_letter_queue]
        queues += [topology.service_queue(s) for s in SERVICES]
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in (
            topology.exchange,
            topology.dead_letter_exchange,
            topology.control_exchange,
        ):
            await channel.exchange_delete(exchange)


def remove_keys(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
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
    runner = Cli(f"t_cli_{uuid.uuid4().hex[:8]}", tmp_path)
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
    """``orch-serv dev flows.ingest:orchestrator``, ready; must exit 0 on SIGTERM."""
    proc = cli.serve_dev()
    yield proc
    if proc.running():
        code = proc.stop()
        assert code == 0, proc.output()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A work directory with copies of the sample CSV files under ``incoming/``."""
    incoming = tmp_path / "work" / "incoming"
    incoming.mkdir(parents=True)
    for sample in DATA_DIR.glob("*.csv"):
        shutil.copy(sample, incoming / sample.name)
    return tmp_path / "work"


def body(workdir: Path, name: str = "city_bike_trips.csv", dataset_id: str | None = None) -> str:
    return json.dumps(
        {
            "dataset_id": dataset_id or Path(name).stem,
            "path": str(workdir / "incoming" / name),
            "workdir": str(workdir),
        }
    )


def start_and_wait(cli: Cli, *args: str) -> Result:
    return cli("start", *args, "--wait", "--timeout", RUN_SECONDS, "--format", "json")


@pytest.fixture
def succeeded(cli: Cli, dev: Background, workdir: Path) -> dict[str, Any]:
    """The JSON status of an ingest run that succeeded."""
    result = start_and_wait(cli, "ingest", "--body", body(workdir))
    assert result.returncode == 0, result
    return result.json()  # type: ignore[no-any-return]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table (rows whose first cell is not empty)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if cells[0]:
                rows.append(cells)
    return rows


# -- long-running commands -------------------------------------------------------------------
def test_dev_serves_the_flows_and_exits_0_on_sigterm(cli: Cli) -> None:
    proc = cli.serve_dev()

    table = cli("flows")
    assert table.returncode == 0, table
    flows = {(row[0], row[1]) for row in table_rows(table.stdout)}
    assert {("flow", "ingest"), ("flow", "profile"), ("block", "validate_csv")} <= flows

    specs = cli("flows", "--format", "json").json()
    by_name = {s["name"]: s for s in specs if s["kind"] == "flow"}
    assert set(by_name) == {"ingest", "profile"}
    assert [s["name"] for s in by_name["ingest"]["steps"]] == [
        "validate_csv",
        "transform",
        "publish",
    ]
    assert [s["service"] for s in by_name["profile"]["steps"]] == ["validator", "transformer"]

    assert proc.stop() == 0, proc.output()
    assert "orch-serv dev: flows ['ingest', 'profile']" in " ".join(proc.stderr.read_text().split())


def test_separate_orchestrator_and_service_processes_run_a_flow(cli: Cli, workdir: Path) -> None:
    """The compose topology: ``service`` accepts an orchestrator app and hosts its services,
    ``orchestrator`` serves the flows; a run goes through both processes."""
    topology = Topology(cli.prefix)
    services = cli.spawn("service", APP)
    cli.wait_for_consumers(services, [topology.service_queue(s) for s in SERVICES])
    orchestrator = cli.spawn("orchestrator", APP)
    cli.wait_for_flow(orchestrator)
    cli.wait_for_consumers(orchestrator, [topology.orchestrator_queue])

    result = start_and_wait(cli, "ingest", "--body", body(workdir, "weather_daily.csv"))
    assert result.returncode == 0, (result, services.output(), orchestrator.output())
    assert result.json()["state"] == "SUCCEEDED"

    assert orchestrator.stop() == 0, orchestrator.output()
    assert services.stop() == 0, services.output()


@pytest.mark.parametrize(
    ("command", "app", "message"),
    [
        ("orchestrator", "not.a.module:x", "cannot import 'not.a.module'"),
        ("orchestrator", "no_colon_here", "expected an import path like"),
        ("orchestrator", "services_examples.validator:service", "is not an orch_serv Orchestrator"),
        ("dev", "flows.ingest:nope", "has no attribute 'nope'"),
        ("service", "not.a.module:x", "cannot import 'not.a.module'"),
        ("service", "flows.ingest:ValidateCsv", "is not a Service"),
    ],
)
def test_a_bad_app_exits_non_zero_with_a_clear_message(
    cli: Cli, command: str, app: str, message: str
) -> None:
    result = cli(command, app, timeout=20)
    assert result.returncode == 1, result
    assert result.error.startswith("error:"), result
    assert message in result.error, result


# -- start -----------------------------------------------------------------------------------
def test_start_wait_prints_the_final_status(cli: Cli, dev: Background, workdir: Path) -> None:
    result = start_and_wait(cli, "ingest", "--body", body(workdir))

    assert result.returncode == 0, (result, dev.output())
    doc = result.json()
    assert list(doc)[:4] == ["done", "id", "state", "status"]
    assert (doc["done"], doc["state"], doc["status"]) == (True, "SUCCEEDED", "OK")
    assert re.fullmatch(r"[0-9A-Za-z]{22}", doc["id"])
    assert (doc["flow"], doc["steps_total"], doc["error"]) == ("ingest", 3, None)
    published = Path(doc["result"]["path"])
    assert published.is_file() and published.parent == workdir / "published" / "city_bike_trips"
    assert {"validated", "transformed", "published"} <= set(doc["statuses"])


def test_start_without_wait_prints_the_run_id(cli: Cli, dev: Background, workdir: Path) -> None:
    result = cli("start", "ingest", "--body", body(workdir, "library_loans.csv"))
    assert result.returncode == 0, result
    run_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9A-Za-z]{22}", run_id), result


def test_start_without_wait_honours_format_json(cli: Cli, dev: Background, workdir: Path) -> None:
    result = cli("start", "ingest", "--body", body(workdir), "--format", "json")
    assert result.returncode == 0, result
    doc = json.loads(result.stdout)
    run_id = doc["id"] if isinstance(doc, dict) else doc
    assert re.fullmatch(r"[0-9A-Za-z]{22}", run_id)


def test_the_same_key_returns_the_same_run(cli: Cli, dev: Background, workdir: Path) -> None:
    first = cli("start", "ingest", "--body", body(workdir), "--key", "loans-2024-03")
    second = start_and_wait(cli, "ingest", "--body", body(workdir), "--key", "loans-2024-03")

    assert first.returncode == 0, first
    assert second.returncode == 0, second
    run_id = first.stdout.strip()
    doc = second.json()
    assert doc["id"] == run_id
    assert doc["key"] == "loans-2024-03"
    assert [r["id"] for r in cli("runs", "--format", "json").json()] == [run_id]


def test_start_of_an_unknown_flow_without_a_default_fails(cli: Cli) -> None:
    """Nothing is registered in this namespace, so there is no default flow to fall back to."""
    result = cli("start", "no_such_flow", "--body", "{}")
    assert result.returncode == 1, result
    assert "unknown flow 'no_such_flow'; registered: []" in result.error, result
    assert result.stdout == ""


def test_start_of_an_unknown_block_fails(cli: Cli, dev: Background) -> None:
    result = cli("start", "--target", "no_such_block", "--body", "{}")
    assert result.returncode == 1, result
    assert "unknown block 'no_such_block'" in result.error, result
    assert "'validate_csv'" in result.error  # the registered blocks are listed
    assert result.stdout == ""


def test_start_of_an_unknown_flow_falls_back_to_the_default_flow(
    cli: Cli, dev: Background, workdir: Path
) -> None:
    """flows.ingest registers default_flow="ingest": an unknown name runs the default
    (orch_serv's documented resolution, see FlowRegistry.resolve / Client.resolve)."""
    result = start_and_wait(cli, "no_such_flow", "--body", body(workdir))
    assert result.returncode == 0, result
    doc = result.json()
    assert (doc["flow"], doc["state"]) == ("ingest", "SUCCEEDED")


def test_start_needs_a_flow_or_a_target(cli: Cli) -> None:
    result = cli("start")
    assert result.returncode == 2, result
    assert "give a FLOW or --target BLOCK" in result.error


@pytest.mark.parametrize("bad", ["{not json", "", "{'single': 'quotes'}", '{"a": 1'])
def test_start_with_invalid_json_body_exits_2(cli: Cli, bad: str) -> None:
    result = cli("start", "ingest", "--body", bad)
    assert result.returncode == 2, result
    assert result.error.startswith("error: --body is not valid JSON"), result
    assert result.stdout == ""


def test_a_failing_run_exits_1_with_the_error(cli: Cli, dev: Background, workdir: Path) -> None:
    (workdir / "incoming" / "bad.csv").write_text("a,b,c\n1,2,3\n4,5\n", encoding="utf-8")
    result = start_and_wait(cli, "ingest", "--body", body(workdir, "bad.csv"))

    assert result.returncode == 1, result
    doc = json.loads(result.stdout)
    assert (doc["done"], doc["state"], doc["status"]) == (True, "FAILED", "FAILED")
    assert doc["error"]["type"] == "NonRetryableError"
    assert doc["error"]["message"].startswith("bad.csv")
    assert doc["result"] is None

    history = cli("status", doc["id"], "--history", "--format", "json").json()
    kinds = [e["kind"] for e in history["events"]]
    assert "step_failed" in kinds and kinds[-1] == "run_failed"
    assert "step_completed" not in kinds

    failed = cli("runs", "--state", "FAILED", "--format", "json").json()
    assert [r["id"] for r in failed] == [doc["id"]]
    assert cli("runs", "--state", "SUCCEEDED", "--format", "json").json() == []


# -- status, history, runs -------------------------------------------------------------------
def test_status_json_and_table(cli: Cli, succeeded: dict[str, Any]) -> None:
    run_id = succeeded["id"]
    doc = cli("status", run_id, "--format", "json").json()
    assert list(doc)[:4] == ["done", "id", "state", "status"]
    assert (doc["done"], doc["id"], doc["state"], doc["status"]) == (
        True,
        run_id,
        "SUCCEEDED",
        "OK",
    )
    assert doc == succeeded

    table = cli("status", run_id)
    assert table.returncode == 0, table
    assert f"Status for: {run_id}" in table.stdout
    [row] = table_rows(table.stdout)
    assert row[:6] == ["True", run_id, "ingest", "SUCCEEDED", "OK", "3/3 publish"]


def test_history_table_has_one_row_per_event(cli: Cli, succeeded: dict[str, Any]) -> None:
    run_id = succeeded["id"]
    events = cli("status", run_id, "--history", "--format", "json").json()["events"]
    table = cli("status", run_id, "--history")

    assert table.returncode == 0, table
    assert f"History of: {run_id}" in table.stdout
    rows = table_rows(table.stdout)
    assert [int(r[0]) for r in rows] == [e["seq"] for e in events]
    assert [r[2] for r in rows] == [e["kind"] for e in events]
    kinds = [r[2] for r in rows]
    assert kinds[0] == "run_created" and kinds[-1] == "run_succeeded"
    assert kinds.count("step_completed") == 3


def test_history_json(cli: Cli, succeeded: dict[str, Any]) -> None:
    run_id = succeeded["id"]
    doc = cli("status", run_id, "--history", "--format", "json").json()

    assert set(doc) == {"run", "events"}
    assert doc["run"] == succeeded
    events = doc["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    completed = [e for e in events if e["kind"] == "step_completed"]
    assert [e["step_name"] for e in completed] == ["validate_csv", "transform", "publish"]
    assert all(e["status"] == "OK" for e in completed)
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["run_created", "run_started"]
    assert kinds[-1] == "run_succeeded"
    statuses = [e["name"] for e in events if e["kind"] == "status"]
    assert statuses == ["validated", "transformed", "published"]


@pytest.mark.parametrize("extra", [[], ["--history"], ["--format", "json"]])
def test_status_of_an_unknown_run_exits_1(cli: Cli, extra: list[str]) -> None:
    result = cli("status", "0123456789abcdef", *extra)
    assert result.returncode == 1, result
    assert result.error == "error: run '0123456789abcdef' not found", result
    assert result.stdout == ""


def test_runs_lists_runs_by_flow_and_state(
    cli: Cli, succeeded: dict[str, Any], workdir: Path
) -> None:
    profile = start_and_wait(cli, "profile", "--body", body(workdir, "air_quality_readings.csv"))
    assert profile.returncode == 0, profile
    profile_id = profile.json()["id"]
    ingest_id = succeeded["id"]

    by_flow = cli("runs", "--flow", "ingest", "--format", "json").json()
    assert [r["id"] for r in by_flow] == [ingest_id]
    same = set(succeeded)
    assert {k: by_flow[0][k] for k in same} == {k: succeeded[k] for k in same}

    everything = cli("runs", "--format", "json").json()
    assert [r["id"] for r in everything] == [profile_id, ingest_id]  # most recent first
    assert [r["id"] for r in cli("runs", "--limit", "1", "--format", "json").json()] == [profile_id]

    table = cli("runs", "--state", "SUCCEEDED")
    assert table.returncode == 0, table
    rows = table_rows(table.stdout)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (profile_id, "profile", "SUCCEEDED"),
        (ingest_id, "ingest", "SUCCEEDED"),
    ]
    assert cli("runs", "--state", "RUNNING", "--format", "json").json() == []

    bad = cli("runs", "--state", "BOGUS")
    assert bad.returncode == 2, bad
    assert "BOGUS" in bad.error


def test_runs_json_reports_the_statuses_a_run_reached(cli: Cli, succeeded: dict[str, Any]) -> None:
    [listed] = cli("runs", "--format", "json").json()
    assert listed["statuses"] == ["published", "transformed", "validated"]
    assert listed == succeeded


def test_runs_flow_lists_single_block_runs(cli: Cli, dev: Background, workdir: Path) -> None:
    result = start_and_wait(cli, "--target", "transform", "--body", body(workdir))
    assert result.returncode == 0, result
    run_id = result.json()["id"]
    # filtering by state too goes through the state index, and finds it
    with_state = cli("runs", "--flow", "transform", "--state", "SUCCEEDED", "--format", "json")
    assert [r["id"] for r in with_state.json()] == [run_id]

    by_flow = cli("runs", "--flow", "transform", "--format", "json").json()
    assert [r["id"] for r in by_flow] == [run_id]
