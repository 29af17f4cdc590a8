"""A run's timeline: one bar per attempt of a step (or of a compensation), its queue wait
(dispatched -> a service picked it up) drawn apart from its execution (picked up -> reply),
retries and timeouts marked. Pure functions over the run's events; the page draws the
result as inline SVG (``_timeline.svg``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from orch_serv.constants import EventKind, Lane
from orch_serv.render import step_label
from orch_serv.store.base import Event, RunRecord

_DISPATCH = {
    EventKind.STEP_DISPATCHED: Lane.RUN,
    EventKind.COMPENSATION_DISPATCHED: Lane.COMPENSATE,
}
_END = {
    EventKind.STEP_COMPLETED: (Lane.RUN, "completed"),
    EventKind.STEP_FAILED: (Lane.RUN, "failed"),
    EventKind.STEP_TIMED_OUT: (None, "timed out"),
    EventKind.COMPENSATION_COMPLETED: (Lane.COMPENSATE, "completed"),
    EventKind.COMPENSATION_FAILED: (Lane.COMPENSATE, "failed"),
}
#: Geometry of the drawing (SVG user units).
WIDTH, LABEL, ROW, TOP = 960, 230, 28, 30
OUTCOME_WIDTH = 150


@dataclass(slots=True)
class Attempt:
    """One attempt of a step or of its compensation, as the events tell it."""

    lane: Lane
    step: int
    attempt: int
    label: str
    dispatched: float | None = None
    started: float | None = None
    ended: float | None = None
    outcome: str = "in progress"
    error: str | None = None
    retry_delay: float | None = None  #: a retry was scheduled after this attempt

    @property
    def timed_out(self) -> bool:
        """The attempt ended by a timeout clock."""
        return self.outcome == "timed out"

    @property
    def queue_wait(self) -> float | None:
        """Seconds from dispatch to pick-up (None when either is unknown)."""
        if self.dispatched is None or self.started is None:
            return None
        return max(self.started - self.dispatched, 0.0)

    @property
    def execution(self) -> float | None:
        """Seconds from pick-up to the end (None when either is unknown)."""
        if self.started is None or self.ended is None:
            return None
        return max(self.ended - self.started, 0.0)


def attempts(events: list[Event], record: RunRecord) -> list[Attempt]:
    """Every attempt of ``record``'s steps and compensations, in dispatch order."""
    found: list[Attempt] = []
    total = record.steps_total or None

    def find(step: int, attempt: int, lane: Lane | None) -> Attempt | None:
        for item in reversed(found):
            same = item.step == step and item.attempt == attempt
            if same and (lane is None or item.lane is lane):
                return item
        return None

    def new(event: Event, lane: Lane) -> Attempt:
        name = step_label(event.step, total, event.step_name)
        prefix = "undo " if lane is Lane.COMPENSATE else ""
        item = Attempt(
            lane, event.step or 0, event.attempt or 1, f"{prefix}{name} #{event.attempt or 1}"
        )
        found.append(item)
        return item

    for event in events:
        if event.step is None:
            continue
        attempt = event.attempt or 1
        if event.kind in _DISPATCH:
            item = new(event, _DISPATCH[event.kind])
            item.dispatched = event.time
        elif event.kind is EventKind.STEP_STARTED:
            item = find(event.step, attempt, None) or new(event, Lane.RUN)
            item.started = event.time if item.started is None else min(item.started, event.time)
        elif event.kind in _END:
            lane, outcome = _END[event.kind]
            item = find(event.step, attempt, lane) or new(event, lane or Lane.RUN)
            if item.ended is not None:
                continue  # a late duplicate
            item.ended, item.outcome = event.time, outcome
            if item.started is None and event.duration_ms is not None:
                item.started = max(event.time - event.duration_ms / 1000, item.dispatched or 0)
            if event.error is not None:
                item.error = f"{event.error.type}: {event.error.message}"
        elif event.kind is EventKind.RETRY_SCHEDULED:
            body = event.body if isinstance(event.body, dict) else {}
            after = body.get("after_attempt", attempt - 1)
            previous = find(event.step, after if isinstance(after, int) else attempt - 1, None)
            delay = body.get("delay")
            if previous is not None and isinstance(delay, int | float):
                previous.retry_delay = float(delay)
    if record.done:
        for item in found:
            if item.ended is None:
                item.ended = record.finished_at or record.updated_at
                item.outcome = f"stopped ({record.state.value})"
    return found


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of the drawing (x and widths in SVG units)."""

    y: float
    item: Attempt
    queue_x: float
    queue_w: float
    exec_x: float
    exec_w: float
    end_x: float
    mark: str  #: the outcome as text: "completed", "failed", "timed out", ...


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis mark: where, and the time since the run was created."""

    x: float
    text: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """The drawing: rows, axis, size; empty when the run dispatched nothing yet."""

    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    width: float = WIDTH
    height: float = TOP
    span: float = 0.0


def _offset(seconds: float) -> str:
    if seconds < 1:
        return f"+{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"+{seconds:.1f} s"
    return f"+{seconds / 60:.1f} min"


def layout(items: list[Attempt], record: RunRecord, now: float) -> Timeline:
    """Place ``items`` on a common time axis from the run's creation to its end (or now)."""
    if not items:
        return Timeline()
    start = min([record.created_at] + [i.dispatched or i.started or now for i in items])
    end = record.finished_at if record.done and record.finished_at else now
    end = max([end] + [i.ended or 0.0 for i in items])
    span = max(end - start, 0.001)
    plot = WIDTH - LABEL - OUTCOME_WIDTH

    def x(t: float) -> float:
        return LABEL + (min(max(t, start), end) - start) / span * plot

    bars = []
    for row, item in enumerate(items):
        first = item.dispatched if item.dispatched is not None else item.started or start
        until = item.ended if item.ended is not None else end
        picked = item.started if item.started is not None else until
        queue_x, exec_x = x(first), x(picked)
        queue_w = max(exec_x - queue_x, 0.0) if item.dispatched is not None else 0.0
        exec_w = max(x(until) - exec_x, 2.0) if item.started is not None else 0.0
        if item.started is None and item.dispatched is not None:
            queue_w = max(queue_w, 2.0)
        end_x = max(queue_x + queue_w, exec_x + exec_w)
        mark = item.outcome
        if item.retry_delay is not None:
            mark += f", retry in {item.retry_delay:g} s"
        bars.append(Bar(TOP + row * ROW, item, queue_x, queue_w, exec_x, exec_w, end_x, mark))
    ticks = [Tick(LABEL + plot * i / 4, _offset(span * i / 4)) for i in range(5)]
    return Timeline(bars, ticks, WIDTH, TOP + len(items) * ROW + 10, span)


__all__ = ["Attempt", "Bar", "Tick", "Timeline", "attempts", "layout"]
