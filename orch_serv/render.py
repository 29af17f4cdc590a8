"""How the CLI shows runs, events and flows: JSON documents and rich tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from rich.table import Table

from orch_serv.constants import EventStatus, RunState
from orch_serv.flow.spec import FlowSpec
from orch_serv.store.base import Event, RunRecord
from orch_serv.transport.base import DeadLetter


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") if ts else None


def run_status(record: RunRecord) -> str:
    """OK or FAILED, as Oslo's event status (a failed run is FAILED, anything else OK)."""
    return EventStatus.FAILED.value if record.state is RunState.FAILED else EventStatus.OK.value


def run_json(record: RunRecord) -> dict[str, Any]:
    """The status document: ``done``, ``id``, ``state``, ``status`` first, like Oslo's CLI."""
    return {
        "done": record.done,
        "id": record.run_id,
        "state": record.state.value,
        "status": run_status(record),
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


def status_table(record: RunRecord) -> Table:
    """'Status for: <id>' with Done | Run ID | Flow | State | Status | Step | Error(s)."""
    table = Table(title=f"Status for: {record.run_id}")
    for column in ("Done", "Run ID", "Flow", "State", "Status", "Step", "Error(s)"):
        table.add_column(column, overflow="fold")
    step = (
        f"{min(record.step + 1, record.steps_total)}/{record.steps_total} {record.step_name or ''}"
    )
    table.add_row(
        str(record.done),
        record.run_id,
        record.flow,
        record.state.value,
        run_status(record),
        step.strip(),
        _error_text(record),
    )
    return table


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


def history_table(run_id: str, events: list[Event]) -> Table:
    """One row per event."""
    table = Table(title=f"History of: {run_id}")
    for column in ("#", "Time", "Kind", "Step", "Attempt", "Component", "Status", "ms", "Detail"):
        table.add_column(column, overflow="fold")
    for e in events:
        table.add_row(
            str(e.seq),
            _iso(e.time) or "",
            e.kind.value,
            "" if e.step is None else f"{e.step} {e.step_name or ''}".strip(),
            "" if e.attempt is None else str(e.attempt),
            e.component or "",
            e.status.value,
            "" if e.duration_ms is None else f"{e.duration_ms:.1f}",
            _detail(e),
        )
    return table


def runs_table(records: list[RunRecord]) -> Table:
    """A list of runs, most recent first."""
    table = Table(title="Runs")
    for column in ("Run ID", "Flow", "State", "Step", "Created", "Finished", "Error(s)"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(
            r.run_id,
            r.flow,
            r.state.value,
            f"{r.step_name or ''} ({r.step + 1}/{r.steps_total})",
            _iso(r.created_at) or "",
            _iso(r.finished_at) or "",
            _error_text(r),
        )
    return table


def flows_table(specs: list[FlowSpec]) -> Table:
    """Registered flows and blocks with their steps."""
    table = Table(title="Flows")
    for column in ("Kind", "Name", "Version", "Steps"):
        table.add_column(column, overflow="fold")
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
    table = Table(title=f"Dead letters ({len(letters)})")
    for column in ("ID", "Queue", "Kind", "Bytes", "Reason"):
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(d.message_id, d.origin_queue, d.kind or "", str(len(d.body)), d.reason)
    return table
