"""Charts and their machines in Redis.

A chart is kept by name (its current version) and by ``name:version``. A machine of a chart
is a run of kind ``chart`` with the id ``{chart}@{machine}``, in the same key layout as every
run (hash, event list, status set, timer members), so ``orch-serv status ID --history``, the
run listings and the HTTP API show it: its ``step`` is the index of its current state,
``step_name`` that state's name, its statuses the states it reached; it is RUNNING until it
reaches an end state, then SUCCEEDED. It keeps a copy of the chart version it was created
with, and its counters (``n:<state index>``). Every change is one call of
``lua/chart_put.lua``: creating, reading, PUTting a state and firing a time state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orch_serv.charts.model import Chart, ChartNotFound, Func, check_name
from orch_serv.constants import RunState
from orch_serv.exceptions import StoreError
from orch_serv.store.chart_script import (
    CHART_ARGS,
    CHART_FIELD,
    CHART_KIND,
    COUNT_PREFIX,
    DEFAULT_MACHINE,
    Answer,
    Mode,
    chart_prelude,
    chart_timer,
    machine_run_id,
)
from orch_serv.store.keys import DEFAULT_SHARDS, Keys
from orch_serv.store.redis_base import RedisBase, lua, merged
from orch_serv.store.scripts import register
from orch_serv.store.shape import Field
from orch_serv.store.timers import TimerId, due_ms


@dataclass(frozen=True, slots=True)
class StateAnswer:
    """What a call found or did: the answer, the machine's current state (after it), its
    run state, the current state's counter and due time, and the counter of the state PUT."""

    answer: Answer
    state: str
    run_state: RunState | None
    count: int | None = None
    due: float | None = None
    counted: int | None = None


@dataclass(frozen=True, slots=True)
class Machine:
    """A machine as stored: its chart version, position, counters (by state name) and times."""

    chart: Chart
    machine: str
    run_id: str
    state: str
    run_state: RunState
    counters: dict[str, int]
    due: float | None
    created_at: float
    updated_at: float
    finished_at: float | None

    @property
    def ended(self) -> bool:
        """True once the machine is in an end state."""
        index = self.chart.index(self.state)
        return index is not None and self.chart.states[index].end


class ChartStore:
    """Charts and machines on a Redis client (the run store's, see :meth:`of`)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        *,
        clock: Callable[[], float] = time.time,
        shards: int = DEFAULT_SHARDS,
    ) -> None:
        self._redis = client
        self.keys = Keys(prefix, shards)
        self.prefix = prefix
        self.clock = clock
        self._script = register(client, chart_prelude() + lua("chart_put.lua", CHART_ARGS))
        self._swap = register(client, _SWAP)

    @classmethod
    def of(cls, store: RedisBase) -> ChartStore:
        """The charts of a run store (same client, key prefix and clock)."""
        return cls(store.redis, store.keys.prefix, clock=store.clock, shards=store.keys.shards)

    # -- keys --------------------------------------------------------------------------------
    @property
    def _charts(self) -> str:
        return f"{self.prefix}:charts"

    @property
    def _versions(self) -> str:
        return f"{self.prefix}:charts:versions"

    @property
    def _default(self) -> str:
        return f"{self.prefix}:charts:default"

    # -- charts ------------------------------------------------------------------------------
    async def save(self, chart: Chart, *, default: bool = False) -> tuple[str | None, bool]:
        """Store ``chart`` as the current version of its name (and as the default chart when
        ``default`` or when there is none yet); returns (the version it replaces or None,
        whether it is the default chart now)."""
        document = orjson.dumps(chart.stored()).decode()
        # Three keys of different Redis Cluster slots, one atomic command each, in order:
        # the version, then the current chart (answering the one it replaces), the default.
        await _call(
            "save_chart",
            self._redis.hset(self._versions, f"{chart.name}:{chart.version}", document),
        )
        previous = await _call(
            "save_chart", self._swap(keys=[self._charts], args=[chart.name, document])
        )
        before = await _call(
            "save_chart", self._redis.set(self._default, chart.name, nx=not default, get=True)
        )
        old = Chart.from_stored(orjson.loads(previous)).version if previous else None
        return old, default or before is None or before == chart.name

    async def get(self, name: str, version: str | None = None) -> Chart | None:
        """The current (or a given) version of chart ``name``."""
        if version:
            raw = await _call("get_chart", self._redis.hget(self._versions, f"{name}:{version}"))
        else:
            raw = await _call("get_chart", self._redis.hget(self._charts, name))
        return Chart.from_stored(orjson.loads(raw)) if raw else None

    async def require(self, name: str | None) -> Chart:
        """Chart ``name`` (None: the default chart), or :class:`ChartNotFound`."""
        if name is None:
            name = await self.default_name()
            if name is None:
                raise ChartNotFound(
                    "no chart is loaded: load one with `orch-serv chart load FILE`, or name "
                    "one with chart=NAME"
                )
        chart = await self.get(name)
        if chart is None:
            raise ChartNotFound(f"no chart named {name!r}")
        return chart

    async def list_charts(self) -> list[Chart]:
        """Every chart (current versions), by name."""
        raw = await _call("list_charts", self._redis.hvals(self._charts))
        return sorted((Chart.from_stored(orjson.loads(r)) for r in raw), key=lambda c: c.name)

    async def default_name(self) -> str | None:
        """The name of the default chart (the one ``/state`` without ``chart=`` uses)."""
        name = await _call("default_chart", self._redis.get(self._default))
        return str(name) if name else None

    # -- machines ----------------------------------------------------------------------------
    async def create_machine(
        self, chart: Chart, machine: str = DEFAULT_MACHINE, *, component: str = ""
    ) -> StateAnswer:
        """Create machine ``machine`` on ``chart`` (answer CREATED), or read it when it
        exists already (EXISTS; it keeps the chart version it was created with)."""
        check_name("machine name", machine)
        document = orjson.dumps(chart.stored()).decode()
        return await self._call(
            Mode.CREATE,
            machine_run_id(chart.name, machine),
            chart_json=document,
            flow=chart.name,
            version=chart.version,
            component=component,
        )

    async def ask(self, chart: str, machine: str = DEFAULT_MACHINE) -> StateAnswer:
        """Where the machine is (firing its due time states first)."""
        return await self._call(Mode.GET, machine_run_id(chart, machine))

    async def put(
        self, chart: str, machine: str, state: str, *, component: str = ""
    ) -> StateAnswer:
        """PUT ``state``: count it when it is the current increment state (moving on at its
        target), in one compare-and-set; the answer says why not otherwise."""
        return await self._call(
            Mode.PUT, machine_run_id(chart, machine), state_name=state, component=component
        )

    async def fire(self, timer: TimerId) -> StateAnswer:
        """A machine's time state timer fell due: move it on if its time has passed and it
        is still there (at most once, whoever fires it)."""
        return await self._call(Mode.TIMER, timer.run_id, component="timer")

    async def delete_machine(self, chart: str, machine: str = DEFAULT_MACHINE) -> bool:
        """Delete a machine with its history and timers; False if there was none."""
        answer = await self._call(Mode.DELETE, machine_run_id(chart, machine))
        return answer.answer is Answer.OK

    async def reset_machine(
        self, chart: Chart, machine: str = DEFAULT_MACHINE, *, component: str = ""
    ) -> StateAnswer:
        """Start a machine again at the chart's ``current_state``, on ``chart``'s version (its
        history goes with the old one)."""
        await self.delete_machine(chart.name, check_name("machine name", machine))
        return await self.create_machine(chart, machine, component=component)

    async def machine(self, chart: str, machine: str = DEFAULT_MACHINE) -> Machine:
        """The machine (its due time states fired first), or :class:`ChartNotFound`."""
        answer = await self.ask(chart, machine)
        if answer.answer is Answer.NOT_FOUND:
            raise ChartNotFound(f"chart {chart!r} has no machine {machine!r}")
        run_id = machine_run_id(chart, machine)
        row = await _call("get_machine", self._redis.hgetall(self.keys.run(run_id)))
        return _machine(machine, run_id, row)

    async def machines(self, chart: str, limit: int = 1000) -> list[Machine]:
        """The machines of ``chart`` (most recently created first)."""
        pipe = self._redis.pipeline(transaction=False)
        for shard in self.keys.every_shard:
            pipe.zrevrange(shard.flow_index(chart), 0, limit - 1, withscores=True)
        pages = await _call("list_machines", pipe.execute())
        ids = merged(pages)[:limit]
        found = []
        for run_id in ids:
            name, at, machine = str(run_id).partition("@")
            if at and name == chart:
                try:
                    found.append(await self.machine(chart, machine))
                except ChartNotFound:
                    continue
        return found

    async def _call(
        self,
        mode: Mode,
        run_id: str,
        *,
        state_name: str = "",
        component: str = "",
        chart_json: str = "",
        flow: str = "",
        version: str = "",
    ) -> StateAnswer:
        now = self.clock()
        keys = self.keys.of_run(run_id)
        reply = await _call(
            f"chart_{mode.value}",
            self._script(
                keys=[
                    keys.run(run_id),
                    keys.events(run_id),
                    keys.statuses(run_id),
                    keys.timers,
                    keys.run_timers(run_id),
                ],
                args=CHART_ARGS.argv(
                    base=keys.base,
                    prefix=self.prefix,
                    run_id=run_id,
                    mode=mode.value,
                    state_name=state_name,
                    now=repr(round(now, 6)),
                    now_ms=due_ms(now),
                    component=component,
                    chart_json=chart_json,
                    flow=flow,
                    version=version,
                ),
            ),
        )
        answer, state, run_state, count, due, counted = (str(x) for x in reply)
        return StateAnswer(
            Answer(answer),
            state,
            RunState(run_state) if run_state else None,
            int(count) if count else None,
            int(due) / 1000 if due else None,
            int(counted) if counted else None,
        )


def _machine(machine: str, run_id: str, row: dict[str, str]) -> Machine:
    chart = Chart.from_stored(orjson.loads(row[CHART_FIELD]))
    step = int(row.get(Field.STEP) or 0)
    current = chart.states[step]
    counters: dict[str, int] = {}
    for i, state in enumerate(chart.states):
        if state.func is Func.INCREMENT:
            counters[state.name] = int(row.get(f"{COUNT_PREFIX}{i}") or state.start)
    finished = row.get(Field.FINISHED_AT)
    return Machine(
        chart=chart,
        machine=machine,
        run_id=run_id,
        state=current.name,
        run_state=RunState(row[Field.STATE]),
        counters=counters,
        due=None if current.due_ms is None else current.due_ms / 1000,
        created_at=float(row.get(Field.CREATED_AT) or 0),
        updated_at=float(row.get(Field.UPDATED_AT) or finished or 0),
        finished_at=float(finished) if finished else None,
    )


async def _call(what: str, op: Any) -> Any:
    """Await a redis-py call (typed ``Awaitable[T] | T`` by redis-py), translating its errors
    into :class:`StoreError`."""
    try:
        return await op
    except (RedisError, OSError) as exc:
        raise StoreError(f"redis {what} failed: {exc}") from exc


#: HSET that answers the value it replaces.
_SWAP = """
local previous = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return previous
"""

__all__ = [
    "CHART_KIND",
    "DEFAULT_MACHINE",
    "Answer",
    "ChartStore",
    "Machine",
    "Mode",
    "StateAnswer",
    "chart_prelude",
    "chart_timer",
    "machine_run_id",
]
