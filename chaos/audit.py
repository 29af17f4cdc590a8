"""Reading every run back after the chaos: what became of each, and the report."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.app import expected_result
from orch_serv.constants import EventKind, RunState
from orch_serv.store.base import Event, RunRecord, RunStore

#: History events that mean "this step's work is done": one per step and lane at most.
COMPLETIONS = (EventKind.STEP_COMPLETED, EventKind.COMPENSATION_COMPLETED)
#: History events that end a run: one at most.
ENDINGS = (
    EventKind.RUN_SUCCEEDED,
    EventKind.RUN_FAILED,
    EventKind.RUN_TIMED_OUT,
    EventKind.RUN_CANCELLED,
    EventKind.RUN_COMPENSATED,
    EventKind.RUN_COMPENSATION_FAILED,
)
#: How many runs are read at once.
BATCH = 100
#: Examples (run id, record, history) kept per kind of problem.
EXAMPLES = 3


@dataclass
class Report:
    """The outcome of a chaos session. ``lost``, ``advanced_twice`` and ``wrong_result``
    must be 0."""

    runs: int = 0
    succeeded: int = 0
    #: Terminal in another state than SUCCEEDED (the flow never fails: chaos did it).
    failed: int = 0
    #: Missing from the store, or not terminal when the drain timeout passed.
    lost: int = 0
    #: A step completed (or the run ended) more than once in the run's history.
    advanced_twice: int = 0
    #: SUCCEEDED with another result than its input gives.
    wrong_result: int = 0
    start_errors: int = 0
    #: Seconds from the first start to the last run terminal (None: not all were).
    drain_seconds: float | None = None
    kills: int = 0
    #: Processes that ended without being killed (``NAME (exit CODE)``), restarted.
    unexpected_exits: list[str] = field(default_factory=list)
    cuts: int = 0
    connections_cut: int = 0
    #: Cluster nodes stopped and started again (``rabbit 2``, ``redis 7103``).
    nodes_stopped: list[str] = field(default_factory=list)
    dead_letters: int = 0
    states: dict[str, int] = field(default_factory=dict)
    #: Evidence: a few runs of each problem, with their histories.
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No run lost, none advanced twice, none with a wrong result."""
        return self.lost == 0 and self.advanced_twice == 0 and self.wrong_result == 0

    def to_json_dict(self) -> dict[str, Any]:
        """Everything, examples included, JSON-ready."""
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def table(self) -> str:
        """The figures as a two-column text table."""
        drain = "-" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"
        rows = [
            ("runs", str(self.runs)),
            ("succeeded", str(self.succeeded)),
            ("failed", str(self.failed)),
            ("lost (missing or stuck)", str(self.lost)),
            ("advanced twice", str(self.advanced_twice)),
            ("wrong result", str(self.wrong_result)),
            ("start errors", str(self.start_errors)),
            ("time to drain", drain),
            ("kills (SIGKILL)", str(self.kills)),
            ("unexpected exits", str(len(self.unexpected_exits))),
            ("connection cuts", f"{self.cuts} ({self.connections_cut} connections)"),
            ("nodes stopped", str(len(self.nodes_stopped))),
            ("dead letters", str(self.dead_letters)),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def completed_twice(events: Sequence[Event]) -> list[tuple[str, int]]:
    """(kind, step) of every step completion that appears more than once in a history, and
    (``run_ended``, -1) when the run ended more than once."""
    counts = Counter((e.kind.value, e.step or 0) for e in events if e.kind in COMPLETIONS)
    counts[("run_ended", -1)] = sum(1 for e in events if e.kind in ENDINGS)
    return sorted(key for key, count in counts.items() if count > 1)


def _evidence(run_id: str, record: RunRecord | None, events: Sequence[Event]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "state": None if record is None else record.state.value,
        "phase": None if record is None or record.phase is None else record.phase.value,
        "step": None if record is None else record.step,
        "attempt": None if record is None else record.attempt,
        "result": None if record is None else record.result,
        "history": [e.to_json_dict() for e in events],
    }


async def audit(store: RunStore, started: Mapping[str, int], report: Report) -> Report:
    """Read every run of ``started`` (run id -> the ``n`` it was started with) back and
    count it into ``report``."""
    states: Counter[str] = Counter()
    ids = list(started)
    for i in range(0, len(ids), BATCH):
        chunk = ids[i : i + BATCH]
        records = await asyncio.gather(*(store.get_run(rid) for rid in chunk))
        histories = await asyncio.gather(*(store.get_events(rid) for rid in chunk))
        for run_id, record, events in zip(chunk, records, histories, strict=True):
            states[record.state.value if record else "MISSING"] += 1
            problems = []
            if record is None or not record.done:
                report.lost += 1
                problems.append("lost")
            elif record.state is RunState.SUCCEEDED:
                report.succeeded += 1
                if record.result != expected_result(started[run_id]):
                    report.wrong_result += 1
                    problems.append("wrong_result")
            else:
                report.failed += 1
                problems.append("failed")
            if completed_twice(events):
                report.advanced_twice += 1
                problems.append("advanced_twice")
            for problem in problems:
                examples = report.examples.setdefault(problem, [])
                if len(examples) < EXAMPLES:
                    examples.append(_evidence(run_id, record, events))
    report.runs = len(ids) + report.start_errors
    report.states = dict(sorted(states.items()))
    return report
