"""The real ``orch-serv`` command line, run as subprocesses against RabbitMQ and Redis.

Each test has a namespace and key prefix of its own, removed afterwards with the queues and
exchanges it declared (``tests/integration/cli_support.py`` runs the commands).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orch_serv.transport.base import Topology
from services_examples import DATA_DIR
from tests.integration.cli_support import (
    RUN_SECONDS,
    App,
    Background,
    Cli,
    Result,
    cli_in_namespace,
    serve_dev_until_done,
    table_rows,
)

pytestmark = pytest.mark.integration

SERVICES = ("validator", "transformer", "publisher")
INGEST = App("flows.ingest:orchestrator", ("ingest", "profile"), SERVICES)
APP = INGEST.path


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in a fresh namespace, cleaned up afterwards."""
    with cli_in_namespace("t_cli", tmp_path, INGEST) as runner:
        yield runner


@pytest.fixture
def dev(cli: Cli) -> Iterator[Background]:
    """``orch-serv dev flows.ingest:orchestrator``, ready; must exit 0 on SIGTERM."""
    yield from serve_dev_until_done(cli)


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
    status = result.json()
    assert isinstance(status, dict)
    return status


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
    cli.wait_for_flow(orchestrator, "ingest")
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


def test_start_of_an_unknown_flow_when_none_is_registered_fails(cli: Cli) -> None:
    """Nothing is registered in this namespace: the error says so (a wrong namespace?)."""
    result = cli("start", "no_such_flow", "--body", "{}")
    assert result.returncode == 2, result
    assert "unknown flow 'no_such_flow': no flows are registered" in result.error, result
    assert result.stdout == ""


def test_start_of_an_unknown_block_fails(cli: Cli, dev: Background) -> None:
    result = cli("start", "--target", "no_such_block", "--body", "{}")
    assert result.returncode == 2, result
    assert "unknown block 'no_such_block'" in result.error, result
    assert "'validate_csv'" in result.error  # the registered blocks are listed
    assert result.stdout == ""


def test_start_needs_a_flow_or_a_target_without_a_default(cli: Cli) -> None:
    result = cli("start")
    assert result.returncode == 2, result
    assert "give a flow or a target block: no default flow is registered" in result.error


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
