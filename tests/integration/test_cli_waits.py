"""``orch-serv signal`` against a real ``orch-serv dev`` process (RabbitMQ and Redis): a run
started from the CLI waits at its wait step until the CLI signals it, with data from
``--data``; bad signals exit 2, unknown and finished runs exit 1, and keep nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli_support import (
    App,
    Background,
    Cli,
    cli_in_namespace,
    poll,
    serve_dev_until_done,
)

pytestmark = pytest.mark.integration

WAITS = App("tests.apps.waits:orchestrator", ("approval", "rollout"), ("desk",))


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in a fresh namespace, cleaned up afterwards."""
    with cli_in_namespace("t_cliwait", tmp_path, WAITS) as runner:
        yield runner


@pytest.fixture
def dev(cli: Cli) -> Iterator[Background]:
    """``orch-serv dev tests.apps.waits:orchestrator``, ready; must exit 0 on SIGTERM."""
    yield from serve_dev_until_done(cli)


def test_signal_lets_a_waiting_run_through(cli: Cli, dev: Background, tmp_path: Path) -> None:
    started = cli("start", "approval", "--body", '{"doc": 1}', "--format", "json")
    run_id = started.json()["id"]

    def waiting() -> bool:
        doc = cli("status", run_id, "--format", "json").json()
        return bool(doc["step"] == 1 and doc["state"] == "RUNNING")

    poll("waiting at the wait step", waiting, dev)
    table = cli("status", run_id)
    assert "waiting: signal 'approved' (the orchestrators check it)" in table.stdout, table
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"by": "cli"}))
    sent = cli("signal", run_id, "approved", "--data", f"@{data}", "--format", "json")
    assert sent.returncode == 0, (sent, dev.output())
    assert sent.json()["id"] == run_id
    final = poll(
        "finished",
        lambda: (doc := cli("status", run_id, "--format", "json").json())["done"] and doc,
        dev,
    )
    assert final["state"] == "SUCCEEDED" and final["result"] == {"released": {"by": "cli"}}
    kinds = [e["kind"] for e in cli.history(run_id)]
    assert kinds.count("signal_received") == 1


def test_bad_signals_exit_with_a_clear_error(cli: Cli, dev: Background) -> None:
    unknown = cli("signal", "no-such-run", "approved")
    assert unknown.returncode == 1 and "not found" in unknown.stderr, unknown
    run_id = cli("start", "approval", "--body", "{}", "--format", "json").json()["id"]
    bad_name = cli("signal", run_id, "not a name")
    assert bad_name.returncode == 2 and "signal name" in bad_name.stderr, bad_name
    bad_json = cli("signal", run_id, "approved", "--data", "{nope")
    assert bad_json.returncode == 2 and "--data is not valid JSON" in bad_json.stderr, bad_json
    big = json.dumps("x" * 2000)
    too_big = cli(
        "signal", run_id, "approved", "--data", big, env={"ORCH_SERV_MAX_MESSAGE_BYTES": "1024"}
    )
    assert too_big.returncode == 2 and "over the limit" in too_big.stderr, too_big
    assert "signal_received" not in [e["kind"] for e in cli.history(run_id)]
    assert cli("cancel", run_id).returncode == 0
    late = cli("signal", run_id, "approved")
    assert late.returncode == 1 and "takes no signal" in late.stderr, late
