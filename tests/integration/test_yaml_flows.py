"""A YAML flow over the real RabbitMQ and Redis with the example services: the real
``orch-serv`` serves flows/ingest.yaml (``orchestrator``, ``service`` and ``dev`` take the flow
file where they take an app's import path), runs succeed, and the versions it registers are
those of the Python twin, so a Python and a YAML orchestrator serve the same runs."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.ingest import IngestFlow, ProfileFlow
from orch_serv.transport.base import Topology
from services_examples import DATA_DIR
from tests.integration.cli_support import (
    RUN_SECONDS,
    App,
    Cli,
    Result,
    cli_in_namespace,
    consumer_counts,
)

pytestmark = pytest.mark.integration

SERVICES = ("validator", "transformer", "publisher")
YAML_APP = App("flows/ingest.yaml", ("ingest", "profile"), SERVICES)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in a fresh namespace, cleaned up afterwards."""
    with cli_in_namespace("t_yamlflow", tmp_path, YAML_APP) as runner:
        yield runner


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A work directory with copies of the sample CSV files under ``incoming/``."""
    incoming = tmp_path / "work" / "incoming"
    incoming.mkdir(parents=True)
    for sample in DATA_DIR.glob("*.csv"):
        shutil.copy(sample, incoming / sample.name)
    return tmp_path / "work"


def body(workdir: Path, name: str) -> str:
    path = workdir / "incoming" / name
    return json.dumps({"dataset_id": path.stem, "path": str(path), "workdir": str(workdir)})


def start_and_wait(cli: Cli, flow: str, start_body: str) -> Result:
    return cli(
        "start", flow, "--body", start_body, "--wait", "--timeout", RUN_SECONDS, "--format", "json"
    )


def registered_versions(cli: Cli) -> dict[str, str]:
    specs = cli("flows", "--format", "json").json()
    return {s["name"]: s["version"] for s in specs if s["kind"] == "flow"}


def test_separate_yaml_orchestrator_and_service_processes_run_the_flows(
    cli: Cli, workdir: Path
) -> None:
    topology = Topology(cli.prefix)
    services = cli.spawn("service", "flows/ingest.yaml")
    cli.wait_for_consumers(services, [topology.service_queue(s) for s in SERVICES])
    orchestrator = cli.spawn("orchestrator", "flows/ingest.yaml")
    cli.wait_for_flow(orchestrator, "profile")
    cli.wait_for_consumers(orchestrator, [topology.orchestrator_queue])

    versions = registered_versions(cli)
    assert versions == {"ingest": IngestFlow.spec().version, "profile": ProfileFlow.spec().version}

    ingest = start_and_wait(cli, "ingest", body(workdir, "weather_daily.csv"))
    assert ingest.returncode == 0, (ingest, services.output(), orchestrator.output())
    doc = ingest.json()
    assert (doc["state"], doc["steps_total"]) == ("SUCCEEDED", 3)
    manifest = json.loads((Path(doc["result"]["path"]).parent / "manifest.json").read_text())
    # the post hook, imported by path from the YAML, ran in the orchestrator
    assert manifest["provenance"]["run_id"] == doc["id"]
    assert manifest["provenance"]["flow_version"] == IngestFlow.spec().version

    profile = start_and_wait(cli, "profile", body(workdir, "library_loans.csv"))
    assert profile.returncode == 0, (profile, orchestrator.output())
    assert profile.json()["state"] == "SUCCEEDED"

    assert orchestrator.stop() == 0, orchestrator.output()
    assert services.stop() == 0, services.output()


def test_a_python_orchestrator_serves_runs_of_the_yaml_flow(cli: Cli, workdir: Path) -> None:
    """Same version: a run of the YAML flow's version is served by the Python twin."""
    topology = Topology(cli.prefix)
    services = cli.spawn("service", "flows/ingest.yaml")
    cli.wait_for_consumers(services, [topology.service_queue(s) for s in SERVICES])
    python = cli.spawn("orchestrator", "flows.ingest:orchestrator")
    cli.wait_for_flow(python, "ingest")
    cli.wait_for_consumers(python, [topology.orchestrator_queue])
    versions = registered_versions(cli)
    yaml_orch = cli.spawn("orchestrator", "flows/ingest.yaml")
    queue = topology.orchestrator_queue
    cli.wait_until(
        yaml_orch,
        "a second consumer of the orchestrator queue",
        lambda: asyncio.run(consumer_counts([queue]))[queue] >= 2,
    )
    assert registered_versions(cli) == versions  # nothing new: the same definitions

    for name in ("city_bike_trips.csv", "library_loans.csv", "weather_daily.csv"):
        result = start_and_wait(cli, "ingest", body(workdir, name))
        assert result.returncode == 0, (result, python.output(), yaml_orch.output())
        assert result.json()["state"] == "SUCCEEDED"

    for proc in (yaml_orch, python, services):
        assert proc.stop() == 0, proc.output()


def test_dev_serves_a_flow_file(cli: Cli, workdir: Path) -> None:
    proc = cli.serve_dev()
    result = start_and_wait(cli, "ingest", body(workdir, "city_bike_trips.csv"))
    assert result.returncode == 0, (result, proc.output())
    assert result.json()["state"] == "SUCCEEDED"
    assert proc.stop() == 0, proc.output()
    assert "orch-serv dev: flows ['ingest', 'profile']" in " ".join(proc.stderr.read_text().split())


@pytest.mark.parametrize("command", ["orchestrator", "service", "dev"])
def test_a_bad_flow_file_exits_1_naming_the_file_line_and_field(
    cli: Cli, tmp_path: Path, command: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("flows:\n  - name: f\n    steps:\n      - {block: a, servise: s}\n")
    result = cli(command, str(bad), timeout=20)
    assert result.returncode == 1, result
    assert result.error == f"error: {bad}:4: flows[0].steps[0].servise: unknown field", result


def test_service_of_a_flow_file_without_services_exits_1(cli: Cli, tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("flows: [{name: f, steps: [{block: a, service: s}]}]\n")
    result = cli("service", str(bare), timeout=20)
    assert result.returncode == 1, result
    assert result.error == f"error: {bare}: the flow file lists no `services` to host", result


def test_a_missing_flow_file_exits_1(cli: Cli, tmp_path: Path) -> None:
    result = cli("orchestrator", str(tmp_path / "nope.yml"), timeout=20)
    assert result.returncode == 1, result
    assert "nope.yml: cannot read the file: No such file or directory" in result.error, result
