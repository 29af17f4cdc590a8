"""Per-step figures of a flow over a recent window, computed from the events of its recent
runs: attempts, failures (failed or timed out) and their rate, p50/p99 of execution time
and of queue wait. Bounded: at most :data:`MAX_RUNS` runs (the newest created in the
window) and :data:`MAX_EVENTS` events of each are read, in pipelined round trips."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import orjson

from orch_serv.constants import EventKind
from orch_serv.flow.spec import FlowSpec
from orch_serv.store.base import Event
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.redis_base import merged

MAX_RUNS = 200
MAX_EVENTS = 400
#: The windows the flow page offers: label -> seconds.
WINDOWS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600}
DEFAULT_WINDOW = "1h"
_ENDS = frozenset({EventKind.STEP_COMPLETED, EventKind.STEP_FAILED, EventKind.STEP_TIMED_OUT})


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(slots=True)
class StepFigures:
    """What one step did in the window."""

    index: int
    name: str
    attempts: int = 0
    failures: int = 0
    timeouts: int = 0
    execution: list[float] = field(default_factory=list)  #: seconds
    queue_wait: list[float] = field(default_factory=list)  #: seconds

    @property
    def finished(self) -> int:
        """Attempts that ended (completed, failed or timed out)."""
        return len(self.execution) + self.failures

    @property
    def failure_rate(self) -> float | None:
        """Failed or timed-out attempts / ended attempts."""
        return self.failures / self.finished if self.finished else None

    def p(self, which: str, fraction: float) -> float | None:
        """A percentile of ``execution`` or ``queue_wait``."""
        return percentile(self.execution if which == "execution" else self.queue_wait, fraction)


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of every step, and how much was looked at."""

    steps: list[StepFigures]
    runs: int
    truncated: bool


def tally(spec: FlowSpec, histories: list[list[Event]], since: float) -> list[StepFigures]:
    """Per-step figures of ``histories`` (events before ``since`` are left out)."""
    figures = [StepFigures(s.index, s.name) for s in spec.steps]
    for events in histories:
        dispatched: dict[tuple[int, int], float] = {}
        started: dict[tuple[int, int], float] = {}
        ended: set[tuple[int, int]] = set()
        for e in events:
            if e.step is None or not 0 <= e.step < len(figures) or e.time < since:
                continue
            one, key = figures[e.step], (e.step, e.attempt or 1)
            if e.kind in _ENDS:
                if key in ended:
                    continue  # a duplicate or late reply: the attempt was counted
                ended.add(key)
            if e.kind is EventKind.STEP_DISPATCHED:
                one.attempts += 1
                dispatched[key] = e.time
            elif e.kind is EventKind.STEP_STARTED and key in dispatched and key not in started:
                started[key] = e.time
                one.queue_wait.append(max(e.time - dispatched[key], 0.0))
            elif e.kind is EventKind.STEP_COMPLETED:
                if e.duration_ms is not None:
                    one.execution.append(max(e.duration_ms, 0.0) / 1000)
                elif key in started:
                    one.execution.append(max(e.time - started[key], 0.0))
            elif e.kind in (EventKind.STEP_FAILED, EventKind.STEP_TIMED_OUT):
                one.failures += 1
                one.timeouts += e.kind is EventKind.STEP_TIMED_OUT
    return figures


async def compute(store: RedisRunStore, spec: FlowSpec, now: float, window: float) -> Figures:
    """The figures of ``spec``'s flow (every version) over the last ``window`` seconds."""
    since = now - window
    pipe = store.redis.pipeline(transaction=False)
    for shard in store.keys.every_shard:
        index = shard.flow_index(spec.name)
        pipe.zrevrangebyscore(
            index, "+inf", repr(since), start=0, num=MAX_RUNS + 1, withscores=True
        )
    pages = await pipe.execute()
    newest = merged(pages)
    truncated = len(newest) > MAX_RUNS
    ids = newest[:MAX_RUNS]
    pipe = store.redis.pipeline(transaction=False)
    for run_id in ids:
        pipe.lrange(store.keys.events(run_id), 0, MAX_EVENTS - 1)
    raw_lists = await pipe.execute() if ids else []
    histories = [
        [Event.from_storage(i, orjson.loads(raw)) for i, raw in enumerate(raws, start=1)]
        for raws in raw_lists
    ]
    return Figures(tally(spec, histories, since), len(ids), truncated)


__all__ = ["DEFAULT_WINDOW", "WINDOWS", "Figures", "StepFigures", "compute", "percentile", "tally"]
