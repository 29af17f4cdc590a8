"""The failure commands of the real ``orch-serv`` CLI: ``retry``, ``cancel`` and ``dlq``.

Run as subprocesses against RabbitMQ and Redis (``tests/integration/cli_support.py``): each
test has a namespace and key prefix of its own, removed afterwards with every queue and
exchange it declared. ``orch-serv dev tests.apps.failing:orchestrator`` runs in the
background; readiness and every later condition are polled under a deadline, never waited
for with a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps.failing import FLOWS, SERVICE
from tests.integration.cli_support import (
    RUN_SECONDS,
    App,
    Background,
    Cli,
    cli_in_namespace,
    declare_namespace,
    poll,
    publish_raw,
    serve_dev_until_done,
)

pytestmark = pytest.mark.integration

FAILING = App("tests.apps.failing:orchestrator", FLOWS, (SERVICE,))


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in a fresh namespace, cleaned up afterwards."""
    with cli_in_namespace("t_clif", tmp_path, FAILING) as runner:
        yield runner


@pytest.fixture
def dev(cli: Cli) -> Iterator[Background]:
    """``orch-serv dev tests.apps.failing:orchestrator``, ready; must exit 0 on SIGTERM."""
    yield from serve_dev_until_done(cli)


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
    # Replays go straight to the queue they came from (through the default exchange).
    same = ("reason", "queue", "kind", "size")
    assert {k: renewed[k] for k in same} == {k: orch[k] for k in same}
    assert renewed["routing_key"] in ("orchestrator", topology.orchestrator_queue)
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
    asyncio.run(declare_namespace(cli.settings))
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
