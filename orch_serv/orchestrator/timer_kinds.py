"""What a due timer does, by its kind: the engine's timer handler (``Engine.on_timer``).

Deadlines and the step clocks (dispatch, total, execution, heartbeat, retry) become
decisions of the core (``core/clocks.py``); a chart machine's time state, a wait's or a
group's next check and a direct start's guard go to their own modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orch_serv.constants import TimerKind
from orch_serv.orchestrator import direct_start
from orch_serv.orchestrator.diagnose import dispatch_diagnosis
from orch_serv.store.timers import TimerId

if TYPE_CHECKING:
    from orch_serv.orchestrator.engine import Engine


async def fire_timer(engine: Engine, timer: TimerId) -> None:
    """Handle one due timer of ``engine`` (called by its timer loop, under a lease)."""
    now = engine.clock()
    if timer.kind is TimerKind.DEADLINE:
        await engine.apply(engine.clocks.on_deadline(timer, now))
        return
    if timer.kind is TimerKind.CHART:  # a chart machine's time state
        from orch_serv.charts.timers import fire_chart_timer  # loads redis: not at import

        due = await fire_chart_timer(engine.store, timer)
        if due is not None:
            engine.timers.poke(due)
        return
    if timer.kind is TimerKind.WAIT:  # a wait step's next check
        await engine.waits.fire(timer)
        return
    if timer.kind is TimerKind.GROUP:  # a group step's next check of its members
        await engine.groups.fire(timer)
        return
    if timer.kind is TimerKind.START:  # a direct start's first command, maybe never sent
        await direct_start.fire_guard(engine, timer)
        return
    record = await engine.store.get_run(timer.run_id)
    if record is None or record.state.terminal:
        return
    definition = await engine.definitions.get(record.kind, record.flow, record.version)
    why = None
    if timer.kind is TimerKind.DISPATCH:
        step = definition.spec.step(timer.step)
        if step is not None:
            why = await dispatch_diagnosis(engine.transport, step.service)
    decision = engine.clocks.on_timer(definition.spec, timer, record, now, why=why)
    await engine.apply(decision)


__all__ = ["fire_timer"]
