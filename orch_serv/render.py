"""How the CLI shows runs, events and flows: JSON documents and rich tables.

Steps are numbered from 1 wherever a person reads them (tables: ``2/3 transform``); the
``step`` fields of the JSON documents are the 0-based index that message ids
(``RUN:STEP:ATTEMPT``) and the store use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from rich.table import Table

from orch_serv.constants import EventStatus, RunState
from orch_serv.flow.spec import FlowSpec
from orch_serv.orchestrator.members import GroupView
from orch_serv.orchestrator.waiting import Waiting
from orch_serv.store.base import Event, RunRecord
from orch_serv.transport.base import DeadLetter

_OK, _FAILED = EventStatus.OK.value, EventStatus.FAILED.value
#: A run's state as the Oslo status-api's event status (``trace_event_status``): OK while it
#: can still succeed and once it has, FAILED for every way of not succeeding (Oslo's SNS
#: consumer maps ABORTED, FAILED and TIMED_OUT to FAILED, SUCCEEDED to OK).
STATUS_OF_STATE: dict[RunState, str] = {
    RunState.PENDING: _OK,
    RunState.RUNNING: _OK,
    RunState.SUCCEEDED: _OK,
    RunState.COMPENSATING: _FAILED,  # undoing after a failure, timeout or cancellation
    RunState.FAILED: _FAILED,
    RunState.TIMED_OUT: _FAILED,
    RunState.CANCELLED: _FAILED,
    RunState.COMPENSATED: _FAILED,
    RunState.COMPENSATION_FAILED: _FAILED,
}
#: A run's state as the Oslo ``trace_status``: STARTED, CONTINUE, FINISHED (= ``done``).
TRACE_STATUS_OF_STATE: dict[RunState, str] = {
    state: "FINISHED"
    if state.terminal
    else ("STARTED" if state is RunState.PENDING else "CONTINUE")
    for state in RunState
}


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") if ts else None


def run_status(record: RunRecord) -> str:
    """OK or FAILED, as Oslo's event status: see :data:`STATUS_OF_STATE`."""
    return STATUS_OF_STATE[record.state]


def step_label(step: int | None, total: int | None, name: str | None) -> str:
    """A step as a person reads it, numbered from 1: ``2/3 transform`` (``2 transform``
    without a total)."""
    if step is None:
        return ""
    number = step + 1 if total is None else min(step + 1, total)
    where = f"{number}/{total}" if total is not None else str(number)
    return f"{where} {name or ''}".strip()


def run_json(
    record: RunRecord, waiting: Waiting | None = None, groups: Sequence[GroupView] = ()
) -> dict[str, Any]:
    """The status document: ``done``, ``id``, ``state``, ``status`` first, like Oslo's CLI;
    with ``waiting``, what the run's current step waits for (queue depth, consumers, hint);
    with ``groups``, the members of its group steps."""
    document = {
        "done": record.done,
        "id": record.run_id,
        "state": record.state.value,
        "status": run_status(record),
        "trace_status": TRACE_STATUS_OF_STATE[record.state],
        "phase": record.phase.value if record.phase else None,
        "kind": record.kind,
        "flow": record.flow,
        "version": record.version,
        "step": record.step,
        "step_name": record.step_name,
        "attempt": record.attempt,
        "steps_total": record.steps_total,
        "key": record.key,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
        "finished_at": _iso(record.finished_at),
        "statuses": sorted(record.statuses),
        "result": record.result,
        "error": record.error.model_dump(exclude_none=True) if record.error else None,
    }
    if waiting is not None:
        document["waiting"] = waiting.to_json()
    if groups:
        document["groups"] = [g.to_json() for g in groups]
    return document


def event_json(event: Event) -> dict[str, Any]:
    """One history entry as JSON."""
    data = event.to_json_dict()
    data["seq"] = event.seq
    data["time"] = _iso(event.time)
    data.setdefault("status", event.status.value)
    return data


def dumps(value: Any) -> str:
    """Pretty JSON for the terminal."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _error_text(record: RunRecord) -> str:
    return f"{record.error.type}: {record.error.message}" if record.error else ""


def _table(title: str, columns: tuple[str, ...]) -> Table:
    """A table whose cells fold when the terminal is narrow (see :func:`_whole`)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _whole(table: Table, *names: str) -> Table:
    """Never wrap or cut the cells of the columns ``names`` (ids: ``orch-serv runs | grep
    ID`` must find them): they keep the width of their longest cell, the others shrink."""
    for column in table.columns:
        if column.header in names:
            column.no_wrap = True
            column.min_width = max((len(str(c)) for c in column.cells), default=0) or None
    return table


def status_table(record: RunRecord) -> Table:
    """'Status for: <id>' with Done | Run ID | Flow | State | Status | Step | Error(s)."""
    table = _table(
        f"Status for: {record.run_id}",
        ("Done", "Run ID", "Flow", "State", "Status", "Step", "Error(s)"),
    )
    table.add_row(
        str(record.done),
        record.run_id,
        record.flow,
        record.state.value,
        run_status(record),
        step_label(record.step, record.steps_total, record.step_name),
        _error_text(record),
    )
    return _whole(table, "Run ID", "State")


def waiting_lines(waiting: Waiting) -> list[str]:
    """What a stuck run's current step waits for, as lines under its status table."""
    lines = [f"waiting: {waiting.describe()}"]
    if waiting.hint:
        lines.append(f"hint: {waiting.hint}")
    return lines


def _detail(event: Event) -> str:
    parts = []
    if event.name:
        parts.append(event.name)
    if event.reason:
        parts.append(f"reason={event.reason}")
    if event.message:
        parts.append(event.message)
    if event.error:
        parts.append(f"{event.error.type}: {event.error.message}")
    if event.body is not None:
        parts.append(orjson.dumps(event.body).decode())
    return " ".join(parts)


def history_table(run_id: str, events: list[Event], steps_total: int | None = None) -> Table:
    """One row per event; steps numbered from 1, as in the status table."""
    table = _table(
        f"History of: {run_id}",
        ("#", "Time", "Kind", "Step", "Attempt", "Component", "Status", "ms", "Detail"),
    )
    for e in events:
        table.add_row(
            str(e.seq),
            _iso(e.time) or "",
            e.kind.value,
            step_label(e.step, steps_total, e.step_name),
            "" if e.attempt is None else str(e.attempt),
            e.component or "",
            e.status.value,
            "" if e.duration_ms is None else f"{e.duration_ms:.1f}",
            _detail(e),
        )
    return table


def event_line(event: Event, steps_total: int | None = None) -> str:
    """One event on one line (``status --watch`` when the output is not a terminal)."""
    parts = [f"#{event.seq}", _iso(event.time) or "", event.kind.value]
    if event.step is not None:
        parts.append(f"step {step_label(event.step, steps_total, event.step_name)}")
    if event.attempt is not None:
        parts.append(f"attempt {event.attempt}")
    if event.component:
        parts.append(event.component)
    parts.append(event.status.value)
    detail = _detail(event)
    if detail:
        parts.append(detail)
    return " ".join(p for p in parts if p)


def runs_table(records: list[RunRecord]) -> Table:
    """A list of runs, most recent first."""
    table = _table("Runs", ("Run ID", "Flow", "State", "Step", "Created", "Finished", "Error(s)"))
    for r in records:
        table.add_row(
            r.run_id,
            r.flow,
            r.state.value,
            step_label(r.step, r.steps_total, r.step_name),
            _iso(r.created_at) or "",
            _iso(r.finished_at) or "",
            _error_text(r),
        )
    return _whole(table, "Run ID", "State")


def flows_table(specs: list[FlowSpec]) -> Table:
    """Registered flows and blocks with their steps."""
    table = _table("Flows", ("Kind", "Name", "Version", "Steps"))
    for s in specs:
        steps = " -> ".join(f"{st.name} ({st.service}.{st.command})" for st in s.steps)
        table.add_row(s.kind, s.name, s.version, steps)
    return table


def dead_json(letter: DeadLetter, *, full: bool = False) -> dict[str, Any]:
    """A dead letter as JSON (the body as text; headers and body only with ``full``)."""
    data: dict[str, Any] = {
        "id": letter.message_id,
        "reason": letter.reason,
        "queue": letter.origin_queue,
        "routing_key": letter.routing_key,
        "kind": letter.kind,
        "size": len(letter.body),
    }
    if full:
        data["headers"] = {k: str(v) for k, v in letter.headers.items()}
        data["body"] = letter.body.decode("utf-8", errors="replace")
    return data


def dead_table(letters: list[DeadLetter]) -> Table:
    """Dead letters, oldest first."""
    table = _table(f"Dead letters ({len(letters)})", ("ID", "Queue", "Kind", "Bytes", "Reason"))
    for d in letters:
        table.add_row(d.message_id, d.origin_queue, d.kind or "", str(len(d.body)), d.reason)
    return _whole(table, "ID")
