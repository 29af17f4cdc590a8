"""Operator and newcomer defects of the ``orch-serv`` CLI (issue #8), each fed over the real
RabbitMQ and Redis with the CLI in a subprocess (``tests/integration/cli_support.py``).

Apps: ``flows.ingest`` (flows ``ingest`` and ``profile``, default flow ``ingest``) served by
an ``orch-serv orchestrator`` process alone, so that runs stop at dispatch; and
``tests.apps.failing`` served by ``orch-serv dev`` for runs that fail, hang or are cancelled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orch_serv.transport.base import Topology
from tests.apps.failing import FLOWS, SERVICE
from tests.conftest import AMQP_URL
from tests.integration.cli_support import (
    RUN_SECONDS,
    App,
    Background,
    Cli,
    cli_in_namespace,
    existing,
    poll,
    serve_dev_until_done,
    table_rows,
)

pytestmark = pytest.mark.integration

INGEST = App("flows.ingest:orchestrator", ("ingest", "profile"), ("validator",))
FAILING = App("tests.apps.failing:orchestrator", FLOWS, (SERVICE,))


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in a fresh namespace where flows.ingest runs (services not started)."""
    with cli_in_namespace("t_clih", tmp_path, INGEST) as runner:
        yield runner


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in a fresh namespace for tests.apps.failing."""
    with cli_in_namespace("t_clihf", tmp_path, FAILING) as runner:
        yield runner


@pytest.fixture
def dev(failing: Cli) -> Iterator[Background]:
    """``orch-serv dev tests.apps.failing:orchestrator``, ready."""
    yield from serve_dev_until_done(failing)


def orchestrator(cli: Cli) -> Background:
    """``orch-serv orchestrator flows.ingest:orchestrator`` (no service process), ready."""
    proc = cli.spawn("orchestrator", INGEST.path)
    cli.wait_for_flow(proc, "ingest")
    cli.wait_for_consumers(proc, [cli.topology.orchestrator_queue])
    return proc


def status(cli: Cli, run_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = cli("status", run_id, "--format", "json").json()
    return doc


def one_line_error(result: Any) -> str:
    """The only stderr line (a clear error, never a traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result
    return str(lines[0])


# -- 1. unknown flows and blocks ----------------------------------------------------------
def test_a_mistyped_flow_or_block_is_refused_with_a_suggestion(cli: Cli) -> None:
    orchestrator(cli)
    typo = cli("start", "profil", "--body", "{}")
    assert typo.returncode == 2, typo
    assert typo.error == (
        "error: unknown flow 'profil': did you mean 'profile'? "
        "registered flows: 'ingest', 'profile'"
    )
    block = cli("start", "--target", "validate_cvs")
    assert block.returncode == 2, block
    assert "unknown block 'validate_cvs': did you mean 'validate_csv'?" in block.error
    assert cli("runs", "--format", "json").json() == []  # nothing started

    default = cli("start", "--body", '{"path": "x.csv"}', "--format", "json").json()
    assert status(cli, default["id"])["flow"] == "ingest"  # no name: the default flow


# -- 2. oversized starts ------------------------------------------------------------------
def test_an_oversized_start_is_refused_before_anything_is_written(cli: Cli, tmp_path: Path) -> None:
    orchestrator(cli)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"path": "a.csv", "blob": "x" * (9 * 1024 * 1024)}))
    result = cli("start", "ingest", "--body", f"@{big}")
    assert result.returncode == 2, result
    assert "over the limit of 8388608 bytes (max_message_bytes); nothing was started" in (
        result.error
    )
    # A body under the limit whose start message is over it: refused by the client.
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"path": "a.csv", "blob": "x" * 1900}))
    env = {"ORCH_SERV_MAX_MESSAGE_BYTES": "2048"}
    result = cli("start", "ingest", "--body", f"@{small}", env=env)
    assert result.returncode == 2, result
    assert "the start of flow 'ingest' is " in result.error
    assert "over the limit of 2048 bytes" in result.error
    assert cli("runs", "--format", "json").json() == []
    assert cli("dlq", "list", "--format", "json").json() == []


# -- 3. URLs and secrets ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--redis-url", "notaurl", "runs"], "redis_url: 'notaurl' is not a URL of redis://"),
        (["--amqp-url", "notaurl", "dlq", "list"], "amqp_url: 'notaurl' is not a URL of amqp://"),
        (
            ["--amqp-url", "amqp://guest:s3cret@127.0.0.1:notaport/", "dlq", "list"],
            "amqp_url: 'amqp://guest:****@127.0.0.1:notaport/' is not a valid URL",
        ),
        (["--redis-url", "redis://127.0.0.1:6379/zero", "runs"], "names database 'zero'"),
        (["--log-format", "xml", "runs"], "log_format: Input should be 'console' or 'json'"),
        (["--log-level", "loud", "runs"], "unknown log level 'loud'"),
    ],
)
def test_a_bad_setting_is_one_clear_line(cli: Cli, args: list[str], expected: str) -> None:
    result = cli(*args)
    assert result.returncode == 2, result
    line = one_line_error(result)
    assert line.startswith("error: invalid settings: ") and expected in line, line
    assert "s3cret" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--redis-url", "redis://:s3cret@127.0.0.1:1/0", "runs"],
            "error: cannot connect to Redis at redis://:****@127.0.0.1:1/0",
        ),
        (
            ["--amqp-url", "amqp://guest:s3cret@127.0.0.1:1/", "dlq", "list"],
            "error: cannot connect to RabbitMQ at amqp://guest:****@127.0.0.1:1/",
        ),
        (  # the real broker, the wrong password
            ["--amqp-url", AMQP_URL.replace(":guest@", ":s3cret@"), "dlq", "list"],
            "error: cannot connect to RabbitMQ at amqp://guest:****@127.0.0.1:5672/: "
            "ACCESS_REFUSED",
        ),
    ],
)
def test_an_unreachable_server_is_one_line_with_the_password_masked(
    cli: Cli, args: list[str], expected: str
) -> None:
    result = cli(*args)
    assert result.returncode == 1, result
    assert one_line_error(result).startswith(expected)
    assert "s3cret" not in result.stderr + result.stdout


# -- 4. the status of runs that did not succeed -------------------------------------------
def test_timed_out_and_cancelled_runs_are_not_ok(
    failing: Cli, dev: Background, tmp_path: Path
) -> None:
    started = json.dumps({"started": str(tmp_path / "started")})
    timed_out = failing(
        "start", "forever", "--body", started, "--deadline", "1", "--wait",
        "--timeout", RUN_SECONDS, "--format", "json",
    )  # fmt: skip
    assert timed_out.returncode == 1, (timed_out, dev.output())
    doc = json.loads(timed_out.stdout)
    assert (doc["state"], doc["status"], doc["trace_status"]) == ("TIMED_OUT", "FAILED", "FINISHED")

    run_id = failing("start", "forever", "--body", started).stdout.strip()
    assert failing("cancel", run_id).returncode == 0
    doc = status(failing, run_id)
    assert (doc["state"], doc["status"], doc["done"]) == ("CANCELLED", "FAILED", True)
    [row] = table_rows(failing("status", run_id).stdout)
    assert row[3:5] == ["CANCELLED", "FAILED"]


# -- 5. a run stuck at dispatch -----------------------------------------------------------
def test_status_says_when_nothing_consumes_the_queue_a_run_waits_in(cli: Cli) -> None:
    proc = orchestrator(cli)
    run_id = cli("start", "ingest", "--body", '{"path": "a.csv"}').stdout.strip()
    doc = poll("dispatching the first step", lambda: _phase(cli, run_id, "DISPATCHED"), proc)
    queue = Topology(cli.prefix).service_queue("validator")
    assert doc["waiting"] == {
        "queue": queue,
        "role": "service",
        "service": "validator",
        "exists": True,
        "messages": 1,
        "consumers": 0,
        "hint": f"no consumer on queue {queue}: is the service 'validator' running?",
    }
    table = cli("status", run_id)
    assert f"waiting: queue {queue}: 1 message(s) ready, 0 consumer(s)" in table.stdout
    assert f"hint: no consumer on queue {queue}: is the service 'validator' running?" in (
        " ".join(table.stdout.split())
    )

    assert proc.stop() == 0  # no orchestrator: a new run waits in the orchestrator queue
    pending = cli("start", "profile", "--body", '{"path": "b.csv"}').stdout.strip()
    waiting = status(cli, pending)["waiting"]
    orchestrators = Topology(cli.prefix).orchestrator_queue
    assert (waiting["queue"], waiting["messages"], waiting["consumers"]) == (orchestrators, 1, 0)
    assert waiting["hint"] == f"no consumer on queue {orchestrators}: is an orchestrator running?"


def _phase(cli: Cli, run_id: str, phase: str) -> dict[str, Any] | None:
    doc = status(cli, run_id)
    return doc if doc["phase"] == phase else None


# -- 6. options, tables, read-only commands, dead letters ---------------------------------
def test_states_are_case_insensitive_and_ids_never_wrap(cli: Cli) -> None:
    orchestrator(cli)
    run_id = cli("start", "ingest", "--body", '{"path": "a.csv"}').stdout.strip()
    listed = cli("runs", "--state", "running", "--format", "json")
    assert listed.returncode == 0, listed
    assert [r["id"] for r in listed.json()] == [run_id]
    narrow = {"COLUMNS": "80"}
    for args in (("runs",), ("status", run_id), ("runs", "--state", "Running")):
        table = cli(*args, env=narrow)
        assert table.returncode == 0, table
        assert max(len(line) for line in table.stdout.splitlines()) <= 80
        assert any(run_id in line for line in table.stdout.splitlines()), table.stdout


def test_history_numbers_steps_from_1_like_status(
    failing: Cli, dev: Background, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    body = json.dumps({"marker": str(marker)})
    doc = failing("start", "sometimes", "--body", body, "--wait", "--format", "json").json()
    [row] = table_rows(failing("status", doc["id"]).stdout)
    assert row[5] == "1/1 sometimes"
    history = table_rows(failing("status", doc["id"], "--history").stdout)
    steps = {r[3] for r in history if r[2] in ("step_dispatched", "step_completed")}
    assert steps == {"1/1 sometimes"}
    events = failing.history(doc["id"])
    assert {e["step"] for e in events if e["kind"] == "step_completed"} == {0}  # JSON: index


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["start", "ingest", "--timeout", "-5"], "--timeout"),
        (["start", "ingest", "--deadline", "0"], "--deadline"),
        (["retry", "x", "--timeout", "-1"], "--timeout"),
        (["status", "x", "--watch", "--timeout", "-1"], "--timeout"),
        (["runs", "--limit", "0"], "--limit"),
        (["dlq", "list", "--limit", "-3"], "--limit"),
    ],
)
def test_negative_numbers_are_refused(cli: Cli, args: list[str], option: str) -> None:
    result = cli(*args)
    assert result.returncode == 2, result
    assert f"Invalid value for '{option}'" in result.error


def test_read_only_commands_create_nothing_in_a_mistyped_namespace(cli: Cli) -> None:
    typo = f"{cli.prefix}_typo"
    topology = Topology(typo)
    for args in (("dlq", "list"), ("dlq", "show", "x"), ("dlq", "purge", "x")):
        result = cli("--namespace", typo, *args)
        assert result.returncode == 1, result
        assert f"namespace {typo!r} has no dead-letter queue" in result.error
    assert cli("--namespace", typo, "status", "nope").returncode == 1
    assert cli("--namespace", typo, "runs").returncode == 0
    names = asyncio.run(
        existing(
            [topology.dead_letter_queue, topology.orchestrator_queue],
            [topology.exchange, topology.dead_letter_exchange, topology.control_exchange],
        )
    )
    assert names == set()
