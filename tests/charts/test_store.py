"""Charts and machines in the store, on fakeredis and on the real Redis: the compare-and-set
of a PUT, counters with >=, end and time states, several machines, versions, and the history
a machine leaves in the run layout."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

import pytest

from orch_serv.charts import parse_chart
from orch_serv.charts.model import Chart, ChartNotFound
from orch_serv.constants import EventKind, RunState, TimerKind
from orch_serv.store.base import Position, Transition
from orch_serv.store.charts import Answer, ChartStore, chart_prelude, chart_timer
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.timers import TimerId
from tests.charts.conftest import Clock
from tests.charts.test_loader import SEED

TIMED = """\
current_state: build
states:
  - name: build
    func: increment
    current: {key: done, value: 0}
    target: {name: wait, when: {key: done, value: 2}}
  - name: wait
    func: time
    target: {name: deploy, when: {key: time, value: 'AT'}}
  - name: deploy
"""


def timed(at: str) -> Chart:
    return parse_chart(TIMED.replace("AT", at), name="rollout")


async def test_the_seed_sequence(charts: ChartStore, run_store: RedisRunStore) -> None:
    chart = parse_chart(SEED, name="states")
    assert await charts.save(chart) == (None, True)
    created = await charts.create_machine(chart)
    assert (created.answer, created.state, created.count) == (Answer.CREATED, "green_state", 0)
    assert (await charts.ask("states")).state == "green_state"
    assert (await charts.put("states", "default", "red_state")).answer is Answer.NOT_CURRENT
    moved = await charts.put("states", "default", "green_state", component="test")
    assert (moved.answer, moved.state, moved.counted) == (Answer.OK, "red_state", 1)
    assert (await charts.put("states", "default", "green_state")).answer is Answer.NOT_CURRENT
    ended = await charts.put("states", "default", "red_state")
    assert (ended.state, ended.run_state) == ("blue_state", RunState.SUCCEEDED)
    assert (await charts.put("states", "default", "blue_state")).answer is Answer.ENDED
    record = await run_store.get_run("states@default")
    assert record is not None
    assert (record.kind, record.flow, record.state, record.step, record.step_name) == (
        "chart",
        "states",
        RunState.SUCCEEDED,
        2,
        "blue_state",
    )
    assert record.statuses == {"green_state", "red_state", "blue_state"}
    events = await run_store.get_events("states@default")
    assert [e.kind for e in events] == [
        EventKind.RUN_CREATED,
        EventKind.STATUS,
        EventKind.HEARTBEAT,
        EventKind.STEP_COMPLETED,
        EventKind.STATUS,
        EventKind.HEARTBEAT,
        EventKind.STEP_COMPLETED,
        EventKind.STATUS,
        EventKind.RUN_SUCCEEDED,
    ]
    assert events[2].body == {"key": "count", "value": 1, "target": 1}
    assert events[2].component == "test" and events[3].reason == "count"
    assert (events[4].name, events[4].message) == ("red_state", "green_state -> red_state")
    assert await run_store.list_runs(flow="states") == [record]


async def test_counters_compare_with_at_least(charts: ChartStore) -> None:
    # StateService compared with ==: a counter starting at its target never moved on.
    chart = parse_chart(SEED.replace("value: 0", "value: 5", 1), name="ahead")
    await charts.save(chart)
    await charts.create_machine(chart)
    result = await charts.put("ahead", "default", "green_state")
    assert (result.counted, result.state) == (6, "red_state")


async def test_machines_are_independent(charts: ChartStore) -> None:
    chart = parse_chart(SEED.replace("value: 1", "value: 2", 1), name="fleet")
    await charts.save(chart)
    for name in ("web-1", "web-2"):
        assert (await charts.create_machine(chart, name)).answer is Answer.CREATED
    assert (await charts.create_machine(chart, "web-1")).answer is Answer.EXISTS
    await charts.put("fleet", "web-1", "green_state")
    await charts.put("fleet", "web-1", "green_state")
    await charts.put("fleet", "web-2", "green_state")
    one, two = await charts.machine("fleet", "web-1"), await charts.machine("fleet", "web-2")
    assert (one.state, one.counters) == ("red_state", {"green_state": 2, "red_state": 0})
    assert (two.state, two.counters) == ("green_state", {"green_state": 1, "red_state": 0})
    assert {m.machine for m in await charts.machines("fleet")} == {"web-1", "web-2"}
    assert (await charts.put("fleet", "web-3", "green_state")).answer is Answer.NOT_FOUND
    with pytest.raises(ChartNotFound, match="has no machine 'web-3'"):
        await charts.machine("fleet", "web-3")


async def test_a_machine_keeps_its_chart_version(charts: ChartStore) -> None:
    first = parse_chart(SEED, name="evolving")
    await charts.save(first)
    await charts.create_machine(first, "old")
    second = parse_chart(SEED.replace("value: 1", "value: 3", 1), name="evolving")
    assert await charts.save(second) == (first.version, True)
    await charts.create_machine(second, "new")
    assert (await charts.put("evolving", "old", "green_state")).state == "red_state"
    assert (await charts.put("evolving", "new", "green_state")).state == "green_state"
    assert (await charts.machine("evolving", "old")).chart.version == first.version
    assert await charts.get("evolving") == second
    assert await charts.get("evolving", first.version) == first
    assert [c.name for c in await charts.list_charts()] == ["evolving"]


async def test_delete_and_reset(charts: ChartStore, run_store: RedisRunStore) -> None:
    chart = timed("2030-01-01T00:00:00Z")
    await charts.save(chart)
    await charts.create_machine(chart, "m")
    await charts.create_machine(chart, "keep")
    for _ in range(2):
        await charts.put("rollout", "m", "build")
    assert (await charts.ask("rollout", "m")).state == "wait"
    assert await run_store.next_timer_due() is not None
    assert await charts.delete_machine("rollout", "m") is True
    assert await charts.delete_machine("rollout", "m") is False
    assert await run_store.next_timer_due() is None
    assert await run_store.get_run("rollout@m") is None
    assert await run_store.get_events("rollout@m") == []
    assert [m.machine for m in await charts.machines("rollout")] == ["keep"]
    await charts.put("rollout", "keep", "build")
    again = await charts.reset_machine(chart, "keep")
    assert (again.answer, again.state, again.count) == (Answer.CREATED, "build", 0)
    events = await run_store.get_events("rollout@keep")
    assert [e.kind for e in events] == [EventKind.RUN_CREATED, EventKind.STATUS]


async def test_the_default_chart(charts: ChartStore) -> None:
    with pytest.raises(ChartNotFound, match="no chart is loaded"):
        await charts.require(None)
    a, b = parse_chart(SEED, name="a"), parse_chart(SEED, name="b")
    assert (await charts.save(a))[1] is True
    assert (await charts.save(b))[1] is False
    assert (await charts.require(None)).name == "a"
    assert (await charts.save(b, default=True))[1] is True
    assert await charts.default_name() == "b"
    with pytest.raises(ChartNotFound, match="no chart named 'c'"):
        await charts.require("c")


async def test_a_time_state_refuses_puts_and_fires_once(
    charts: ChartStore, run_store: RedisRunStore, clock: Clock
) -> None:
    chart = timed("2027-01-15T10:00:00+00:00")  # the clock starts at 08:00 UTC that day
    due = chart.states[1].due_ms
    assert due is not None
    await charts.save(chart)
    await charts.create_machine(chart)
    await charts.put("rollout", "default", "build")
    waiting = await charts.put("rollout", "default", "build")
    assert (waiting.state, waiting.due) == ("wait", due / 1000)
    assert (await charts.put("rollout", "default", "wait")).answer is Answer.TIMED
    member = chart_timer("rollout@default", 1, 1)
    assert TimerId.parse(member) == TimerId("rollout@default", TimerKind.CHART, step=1, attempt=1)
    assert await run_store.next_timer_due() == due / 1000
    assert await run_store.claim_timers(clock(), 30, 10) == []
    # early: nothing fires
    assert (await charts.fire(TimerId.parse(member))).state == "wait"
    clock.now = due / 1000
    claimed = await run_store.claim_timers(clock(), 30, 10)
    assert [m for m, _ in claimed] == [member]
    fired = await charts.fire(TimerId.parse(member))
    again = await charts.fire(TimerId.parse(member))
    assert (fired.state, again.state) == ("deploy", "deploy")
    await run_store.release_timer(*claimed[0])
    assert await run_store.next_timer_due() is None
    events = await run_store.get_events("rollout@default")
    fired_events = [e for e in events if e.kind is EventKind.STEP_COMPLETED and e.reason == "time"]
    assert len(fired_events) == 1
    assert events[-1].kind is EventKind.RUN_SUCCEEDED


async def test_a_passed_time_fires_on_entry_and_chains(charts: ChartStore) -> None:
    text = """\
current_state: a
states:
  - name: a
    func: time
    target: {name: b, when: {value: '2020-01-01T00:00:00Z'}}
  - name: b
    func: time
    target: {name: c, when: {value: '2021-01-01T00:00:00Z'}}
  - name: c
    func: time
    target: {name: d, when: {value: '3000-01-01T00:00:00Z'}}
  - name: d
"""
    chart = parse_chart(text, name="chain")
    created = await charts.create_machine(chart, "m")
    assert (created.state, created.due) == ("c", chart.states[2].due_ms / 1000)  # type: ignore[operator]


async def test_a_cancelled_machine_takes_no_puts(
    charts: ChartStore, run_store: RedisRunStore, clock: Clock
) -> None:
    chart = timed("2030-01-01T00:00:00Z")
    await charts.create_machine(chart, "m")
    await charts.put("rollout", "m", "build")
    await charts.put("rollout", "m", "build")
    assert await run_store.next_timer_due() is not None
    await run_store.transition(
        Transition.any_active(
            run_id="rollout@m",
            new=Position(RunState.CANCELLED, None, None),
            cause="test",
            now=clock(),
        )
    )
    assert await run_store.next_timer_due() is None  # the machine's timer went with it
    answer = await charts.put("rollout", "m", "wait")
    assert (answer.answer, answer.run_state) == (Answer.STOPPED, RunState.CANCELLED)
    chart2 = parse_chart(SEED, name="plain")
    await charts.create_machine(chart2, "m")
    await run_store.transition(
        Transition.any_active(
            run_id="plain@m", new=Position(RunState.CANCELLED, None, None), cause="t", now=1.0
        )
    )
    assert (await charts.put("plain", "m", "green_state")).answer is Answer.STOPPED


async def test_an_ordinary_run_is_not_a_machine(
    charts: ChartStore, run_store: RedisRunStore
) -> None:
    await cast(
        Awaitable[int],
        run_store.redis.hset(run_store.keys.run("x@y"), mapping={"state": "RUNNING"}),
    )
    assert (await charts.ask("x", "y")).answer is Answer.NOT_FOUND


def test_the_prelude_builds_the_timer_member_python_builds() -> None:
    import fakeredis

    server = fakeredis.FakeStrictRedis(decode_responses=True)
    got: object = server.eval(chart_prelude() + "return chart_timer('c@m', 3, 7)", 0)
    assert got == chart_timer("c@m", 3, 7) == "c@m|chart|run|3|7"
