"""Wait steps in virtual time with the test kit: a run held until a signal reaches it or a
chart machine is in a state, its data handed on, its timeout, cancelling it, and the
refusals of signals that cannot be taken."""

from __future__ import annotations

import pytest

from orch_serv import InvalidRunState, RunNotFound
from orch_serv.charts import parse_chart
from orch_serv.constants import EventKind, Phase, RunState
from orch_serv.store.charts import ChartStore
from orch_serv.store.redis import RedisRunStore
from orch_serv.testing import FlowTestKit, KitFactory
from tests.apps.waits import LIGHTS
from tests.apps.waits import orchestrator as app


async def _at_wait(kit: FlowTestKit, run_id: str, step: int = 1) -> None:
    await kit.until(
        run_id, lambda r: r.step == step and r.phase is Phase.DISPATCHED, skip_time=False
    )


async def test_a_signal_lets_the_run_through_with_its_data(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("approval", {"doc": 1})
    await _at_wait(kit, run_id)
    await kit.advance(600)  # ten minutes of checks: still waiting
    held = await kit.running.get(run_id)
    assert (held.state, held.step, held.phase) == (RunState.RUNNING, 1, Phase.DISPATCHED)
    await kit.running.signal(run_id, "approved", {"by": "ops"})
    record = await kit.wait(run_id)
    assert record.state is RunState.SUCCEEDED
    assert record.result == {"released": {"by": "ops"}}
    events = await kit.events(run_id)
    signal = next(e for e in events if e.kind is EventKind.SIGNAL_RECEIVED)
    assert (signal.name, signal.body, signal.component) == ("approved", {"by": "ops"}, "client")
    completed = [e.step for e in events if e.kind is EventKind.STEP_COMPLETED]
    assert completed == [0, 1, 2]  # the wait completed once


async def test_a_bare_signal_hands_the_input_on(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("approval", {"doc": 2})
    await _at_wait(kit, run_id)
    await kit.running.signal(run_id, "approved")
    record = await kit.wait(run_id)
    assert record.result == {"released": {"doc": 2, "prepared": True}}


async def test_a_signal_sent_early_is_kept(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("approval", {"doc": 3})
    await kit.running.signal(run_id, "approved", "early")  # before the run gets there
    record = await kit.wait(run_id)
    assert record.state is RunState.SUCCEEDED and record.result == {"released": "early"}


async def test_a_wait_times_out(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    started = kit.clock()
    record = await kit.run("approval", {"doc": 4})  # nobody signals: time skips to the limit
    assert record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "StepTotalTimeout"
    assert record.step == 1 and kit.clock() - started >= 3600


async def test_cancelling_a_waiting_run_clears_its_checks(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("approval", {"doc": 5})
    await _at_wait(kit, run_id)
    await kit.running.cancel(run_id)
    store = kit.running.store
    assert isinstance(store, RedisRunStore)
    assert await store.redis.zscore(store.keys.timers_of(run_id), f"{run_id}|wait|run|1|1") is None
    with pytest.raises(InvalidRunState, match="takes no signal"):
        await kit.running.signal(run_id, "approved")
    assert (await kit.running.get(run_id)).state is RunState.CANCELLED


async def test_signals_that_cannot_be_taken_are_refused(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    with pytest.raises(RunNotFound):
        await kit.running.signal("no-such-run", "approved")
    run_id = await kit.start("approval", {"doc": 6})
    await _at_wait(kit, run_id)
    for name in ("", "a b", "x" * 129, "semi;colon"):
        with pytest.raises(ValueError, match="signal name"):
            await kit.running.signal(run_id, name)
    with pytest.raises(ValueError, match="JSON"):
        await kit.running.signal(run_id, "approved", {1, 2})
    with pytest.raises(ValueError, match="64-bit"):
        await kit.running.signal(run_id, "approved", 2**70)
    events = await kit.events(run_id)
    assert not [e for e in events if e.kind is EventKind.SIGNAL_RECEIVED]  # nothing kept
    assert (await kit.running.get(run_id)).state is RunState.RUNNING


async def test_a_run_waits_for_a_chart_state(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    store = kit.running.store
    assert isinstance(store, RedisRunStore)
    charts = ChartStore.of(store)
    run_id = await kit.start("rollout", {"doc": 7})
    await _at_wait(kit, run_id)
    await kit.advance(60)  # no machine yet: the wait keeps checking
    chart = parse_chart(LIGHTS, name="lights")
    await charts.save(chart)
    await charts.create_machine(chart, "m1")
    await charts.put("lights", "m1", "green_state")
    await kit.advance(60)  # one PUT of two: still green
    assert (await kit.running.get(run_id)).step == 1
    await charts.put("lights", "m1", "green_state")  # now red: one of the states waited for
    record = await kit.wait(run_id)
    assert record.state is RunState.SUCCEEDED
    assert record.result == {"released": {"doc": 7, "prepared": True}}
