"""How the CLI shows runs: the Oslo status vocabulary, step numbers, ids that never wrap."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orch_serv import render
from orch_serv.constants import Phase, RunState
from orch_serv.store.base import RunRecord
from orch_serv.transport.base import DeadLetter

RUN_ID = "4cKq9ZtWmX2pLr7YbN3vHd"  # 22 characters, like new_run_id()


def record(state: RunState, step: int = 1, phase: Phase | None = None) -> RunRecord:
    return RunRecord(
        run_id=RUN_ID,
        kind="flow",
        flow="ingest_with_a_long_flow_name",
        version="v1",
        state=state,
        step=step,
        step_name="transform",
        attempt=1,
        steps_total=3,
        created_at=1_700_000_000.0,
        updated_at=1_700_000_001.0,
        phase=phase,
    )


@pytest.mark.parametrize(
    ("state", "status", "trace_status"),
    [
        (RunState.PENDING, "OK", "STARTED"),
        (RunState.RUNNING, "OK", "CONTINUE"),
        (RunState.COMPENSATING, "FAILED", "CONTINUE"),
        (RunState.SUCCEEDED, "OK", "FINISHED"),
        (RunState.FAILED, "FAILED", "FINISHED"),
        (RunState.TIMED_OUT, "FAILED", "FINISHED"),
        (RunState.CANCELLED, "FAILED", "FINISHED"),
        (RunState.COMPENSATED, "FAILED", "FINISHED"),
        (RunState.COMPENSATION_FAILED, "FAILED", "FINISHED"),
    ],
)
def test_states_map_to_the_oslo_vocabulary(state: RunState, status: str, trace_status: str) -> None:
    doc = render.run_json(record(state))
    assert (doc["status"], doc["trace_status"]) == (status, trace_status)
    assert list(doc)[:4] == ["done", "id", "state", "status"]


def test_every_state_has_a_status() -> None:
    assert set(render.STATUS_OF_STATE) == set(RunState)


def test_steps_are_numbered_from_1() -> None:
    assert render.step_label(0, 3, "validate") == "1/3 validate"
    assert render.step_label(2, 3, "publish") == "3/3 publish"
    assert render.step_label(5, 3, "publish") == "3/3 publish"  # never past the total
    assert render.step_label(1, None, "x") == "2 x"
    assert render.step_label(None, 3, "x") == ""


def lines_at(width: int, table: object) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True).print(table)
    return buffer.getvalue().splitlines()


@pytest.mark.parametrize("width", [60, 80])
def test_ids_never_wrap_in_narrow_tables(width: int) -> None:
    failed = record(RunState.FAILED)
    for table in (render.status_table(failed), render.runs_table([failed, failed])):
        lines = lines_at(width, table)
        assert sum(RUN_ID in line for line in lines) >= 1, "\n".join(lines)
        assert not any(RUN_ID[:8] in line and RUN_ID not in line for line in lines)
    letter = DeadLetter("f" * 32, "bad JSON", "ns.orchestrator", "orchestrator", None, b"{", {})
    lines = lines_at(width, render.dead_table([letter]))
    assert any("f" * 32 in line for line in lines), "\n".join(lines)
