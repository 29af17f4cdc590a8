"""Time states fire from the orchestrator's timer loop: in virtual time with the test kit
(also the year 3000, which overflowed StateService's timer), and once in real time against
RabbitMQ and Redis with a short delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orch_serv.charts import parse_chart
from orch_serv.constants import EventKind, RunState
from orch_serv.settings import Settings
from orch_serv.store.base import RunRecord
from orch_serv.store.charts import Answer, ChartStore
from orch_serv.store.redis import RedisRunStore
from orch_serv.testing import EPOCH, KitFactory
from tests.apps import pipeline
from tests.conftest import eventually

CHAIN = """\
current_state: build
states:
  - name: build
    func: increment
    current: {key: done, value: 0}
    target: {name: canary, when: {key: done, value: 1}}
  - name: canary
    func: time
    target: {name: fleet, when: {key: time, value: 'FIRST'}}
  - name: fleet
    func: time
    target: {name: done, when: {key: time, value: 'SECOND'}}
  - name: done
"""


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def at_state(name: str) -> object:
    return lambda record: record.step_name == name


async def test_time_states_fire_in_virtual_time(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(pipeline.orchestrator)
    store = kit.running.store
    assert isinstance(store, RedisRunStore)
    charts = ChartStore.of(store)
    chart = parse_chart(
        CHAIN.replace("FIRST", iso(EPOCH + 3600)).replace("SECOND", iso(EPOCH + 7200)),
        name="rollout",
    )
    await charts.save(chart)
    await charts.create_machine(chart)
    assert (await charts.put("rollout", "default", "build")).state == "canary"
    record = await kit.until("rollout@default", at_state("fleet"))  # type: ignore[arg-type]
    assert kit.clock() == EPOCH + 3600  # the kit skipped straight to the timer
    assert (await charts.put("rollout", "default", "fleet")).answer is Answer.TIMED
    record = await kit.wait("rollout@default")
    assert (record.state, record.step_name, kit.clock()) == (
        RunState.SUCCEEDED,
        "done",
        EPOCH + 7200,
    )
    events = await kit.events("rollout@default")
    fired = [e.step_name for e in events if e.kind is EventKind.STEP_COMPLETED]
    assert fired == ["build", "canary", "fleet"]  # each once
    assert [e.reason for e in events if e.kind is EventKind.STEP_COMPLETED] == [
        "count",
        "time",
        "time",
    ]
    assert [e.time for e in events if e.kind is EventKind.RUN_SUCCEEDED] == [EPOCH + 7200]


async def test_the_year_3000_is_reached(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(pipeline.orchestrator)
    store = kit.running.store
    assert isinstance(store, RedisRunStore)
    charts = ChartStore.of(store)
    chart = parse_chart(
        CHAIN.replace("FIRST", "3000-01-01T00:00:00Z").replace("SECOND", "3000-01-01T00:00:01Z"),
        name="far",
    )
    await charts.create_machine(chart, "m")
    await charts.put("far", "m", "build")
    record = await kit.wait("far@m")
    assert record.step_name == "done"
    assert kit.clock() == datetime(3000, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp()


@pytest.mark.integration
async def test_a_time_state_fires_in_real_time(settings: Settings) -> None:
    async with pipeline.orchestrator.run(settings) as running:
        store = running.store
        assert isinstance(store, RedisRunStore)
        charts = ChartStore.of(store)
        soon = datetime.now(UTC) + timedelta(seconds=1.5)
        chart = parse_chart(
            CHAIN.replace("FIRST", soon.isoformat()).replace("SECOND", soon.isoformat()),
            name="soon",
        )
        await charts.create_machine(chart)
        await charts.put("soon", "default", "build")

        async def finished() -> RunRecord | None:
            record = await store.get_run("soon@default")
            return record if record is not None and record.done else None

        record = await eventually(finished, timeout=30)
        assert record.step_name == "done" and record.state is RunState.SUCCEEDED
        events = await store.get_events("soon@default")
        assert [e.component for e in events if e.reason == "time"] == ["timer", "timer"]
