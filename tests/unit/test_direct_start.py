"""A client's first dispatch (orchestrator/direct_start.py) is the engine's, to the field."""

from __future__ import annotations

import dataclasses

import pytest

from orch_serv.constants import Lane, MessageKind, TimerKind
from orch_serv.flow.policy import Timeouts
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.flow.waits import WaitSpec
from orch_serv.messages import ids
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator import direct_start
from orch_serv.orchestrator.core import Advance, Commit, Planner
from orch_serv.orchestrator.core.dispatch import start_message
from orch_serv.store.timers import TimerId

NOW = 1_000.0
FIRST = StepSpec(index=0, name="a", block="a", service="s", command="a")
SPEC = FlowSpec(
    name="f", steps=(FIRST, StepSpec(index=1, name="b", block="b", service="s", command="b"))
).with_version()


def _without_created_at(command: Envelope[object] | None) -> dict[str, object]:
    assert command is not None
    return command.model_dump(exclude={"created_at"})


@pytest.mark.parametrize(
    "defaults",
    [Timeouts(), Timeouts(dispatch=5.0, execution=30.0, heartbeat=10.0, total=60.0)],
)
def test_the_first_dispatch_is_what_the_engine_commits_on_start(defaults: Timeouts) -> None:
    planner = Planner(defaults, "ns.orchestrator")
    start = start_message("r1", "flow", "f", SPEC.version, {"x": 1}, "00-ab-cd-01")
    engine = Advance(planner).on_start(SPEC, start, NOW, redelivered=False)
    assert isinstance(engine, Commit)
    client = direct_start.first_dispatch(
        direct_start.DirectStart(planner, guard_seconds=30.0),
        SPEC,
        "r1",
        {"x": 1},
        NOW,
        start.traceparent,
    )
    guard = (str(TimerId("r1", TimerKind.START, Lane.RUN, 0, 1)), NOW + 30.0)
    assert client.commit.timers_add == [*engine.change.timers_add, guard]
    assert dataclasses.replace(client.commit, timers_add=engine.change.timers_add) == engine.change
    assert client.commit.cause == ids.start_id("r1") == start.message_id
    assert _without_created_at(client.command) == _without_created_at(engine.command)
    assert client.command.kind is MessageKind.COMMAND
    assert client.command.notify_start is bool(defaults.dispatch)


def test_only_a_first_step_without_pre_hook_that_a_service_runs_is_eligible() -> None:
    assert direct_start.eligible(SPEC)
    hooked = SPEC.model_copy(update={"steps": (FIRST.model_copy(update={"pre_hook": "h"}),)})
    assert not direct_start.eligible(hooked)
    waiting = FIRST.model_copy(update={"wait": WaitSpec(kind="signal", signal="go")})
    assert waiting.kept
    assert not direct_start.eligible(SPEC.model_copy(update={"steps": (waiting,)}))
