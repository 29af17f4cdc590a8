"""Wait steps (:mod:`orch_serv.flow.waits`) on the engine's side: checking their condition.

Dispatching a wait step sends no command; the dispatch sets the step's ``wait`` timer, due at
once. The timer loop hands it here (any replica, under the timer's lease): when the condition
holds, the wait answers like a service would, with a reply to the orchestrators' queue (id
``ids.reply_id`` of the step's command id, so a second check that also finds it true sends
the same reply and the engine keeps one); when it does not, the timer is moved to the next
check. A run that has moved on (completed, timed out, cancelled) cleared the timer with its
transition, and a check that finds the run elsewhere does nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orch_serv.constants import Lane, MessageKind, RunState
from orch_serv.flow.spec import StepSpec
from orch_serv.flow.waits import WaitSpec
from orch_serv.logs import get_logger
from orch_serv.messages import ids
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.definitions import Definitions
from orch_serv.store.base import RunRecord, RunStore
from orch_serv.store.timers import TimerId

log = get_logger("waits")

Publish = Callable[[Envelope[Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Held:
    """A wait's condition holds; ``output`` is what the step hands on."""

    output: Any


async def check(store: RunStore, wait: WaitSpec, record: RunRecord) -> Held | None:
    """Whether the wait of ``record``'s current step is over (None: not yet)."""
    from orch_serv.store.signals import signals_of  # loads redis: not at import

    if wait.kind == "signal":
        assert wait.signal is not None
        received, data = await signals_of(store).received(record.run_id, wait.signal)
        if not received:
            return None
        return Held(record.step_input if data is None else data)
    from orch_serv.charts.timers import charts_of  # loads the chart store only when used
    from orch_serv.store.charts import DEFAULT_MACHINE

    charts = charts_of(store)
    assert charts is not None and wait.chart is not None and wait.states is not None
    answer = await charts.ask(wait.chart, wait.machine or DEFAULT_MACHINE)
    return Held(record.step_input) if answer.state in wait.states else None


def wait_reply(record: RunRecord, step: StepSpec, output: Any, now: float) -> Envelope[Any]:
    """The reply a wait sends when it is over (the one a service would send)."""
    command = ids.command_id(record.run_id, step.index, record.attempt)
    return Envelope[Any](
        kind=MessageKind.REPLY,
        message_id=ids.reply_id(command),
        run_id=record.run_id,
        flow=record.flow if record.kind == "flow" else None,
        target=record.flow if record.kind == "block" else None,
        flow_version=record.version,
        step=step.index,
        step_name=step.name,
        attempt=record.attempt,
        lane=Lane.RUN,
        service=step.service,
        command=step.command,
        created_at=now,
        body=output,
    )


class Waits:
    """Checks due waits for one engine."""

    def __init__(
        self,
        store: RunStore,
        definitions: Definitions,
        publish: Publish,
        *,
        clock: Callable[[], float],
        poke: Callable[[float], None],
    ) -> None:
        self.store = store
        self.definitions = definitions
        self.publish = publish
        self.clock = clock
        self.poke = poke

    async def fire(self, timer: TimerId) -> None:
        """Check the wait ``timer`` is about: reply when it is over, else check again later."""
        record = await self.store.get_run(timer.run_id)
        if (
            record is None
            or record.state is not RunState.RUNNING
            or (record.step, record.attempt) != (timer.step, timer.attempt)
        ):
            return  # the run moved on: its transition cleared (or will clear) the timer
        definition = await self.definitions.get(record.kind, record.flow, record.version)
        step = definition.spec.step(timer.step)
        if step is None or step.wait is None:
            log.warning("wait_timer_without_wait", member=str(timer))
            return
        now = self.clock()
        # The next check is set BEFORE this one looks: a signal that arrives meanwhile makes
        # it due at once again (and is not overwritten by setting it afterwards).
        due = now + step.wait.poll
        await self.store.move_timer(str(timer), due)
        held = await check(self.store, step.wait, record)
        if held is None:
            self.poke(due)
            return
        await self.publish(wait_reply(record, step, held.output, now))
        log.debug("wait_over", run_id=record.run_id, step=step.name)


__all__ = ["Held", "Waits", "check", "wait_reply"]
