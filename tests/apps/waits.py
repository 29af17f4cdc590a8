"""Flows that wait (for a signal, for a chart machine's state) and the service around them,
for the wait tests (test kit, HTTP API, CLI processes)."""

from __future__ import annotations

from typing import Any

from orch_serv import (
    Block,
    Flow,
    FlowBlock,
    FlowBuilder,
    Orchestrator,
    Service,
    WaitForChart,
    WaitForSignal,
)

desk = Service("desk")


@desk.command("prepare")
async def prepare(body: dict[str, Any]) -> dict[str, Any]:
    """Marks the body prepared."""
    return {**body, "prepared": True}


@desk.command("release")
async def release(body: Any) -> dict[str, Any]:
    """Wraps what it is given."""
    return {"released": body}


class Prepare(Block):
    name_block = "prepare"
    service = "desk"


class Release(Block):
    name_block = "release"
    service = "desk"


class Approval(Flow):
    """Prepare, wait (at most an hour) for the signal ``approved``, release."""

    name_flow = "approval"
    steps_flow = FlowBuilder(
        FlowBlock(Prepare), FlowBlock(WaitForSignal("approved", timeout=3600)), FlowBlock(Release)
    )


class Rollout(Flow):
    """Prepare, wait until machine ``m1`` of the chart ``lights`` is red or blue, release."""

    name_flow = "rollout"
    steps_flow = FlowBuilder(
        FlowBlock(Prepare),
        FlowBlock(WaitForChart("lights", state=["red_state", "blue_state"], machine="m1", poll=1)),
        FlowBlock(Release),
    )


orchestrator = Orchestrator(flows=[Approval, Rollout], services=[desk])

#: Two PUTs of green make it red, one more of red makes it blue (the end).
LIGHTS = """\
current_state: green_state
states:
  - name: green_state
    func: increment
    current: {key: count, value: 0}
    target: {name: red_state, when: {key: count, value: 2}}
  - name: red_state
    func: increment
    current: {key: count, value: 0}
    target: {name: blue_state, when: {key: count, value: 1}}
  - name: blue_state
"""
