"""Wait steps as definitions: their spec and version (the same from Python and YAML, and no
change to flows without waits), what the planner makes of them (no command leaves, a check is
due at once, only the total clock applies), and bad wait definitions refused clearly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, WaitForChart, WaitForSignal
from orch_serv.constants import Lane, TimerKind
from orch_serv.exceptions import FlowBlockException
from orch_serv.flow.policy import Timeouts
from orch_serv.flow.waits import WAITS_SERVICE, WaitSpec
from orch_serv.flow.yamlflows import FlowFileError, parse_flow_file
from orch_serv.orchestrator.core import Planner


class Build(Block):
    name_block = "build"
    service = "ci"


class Gated(Flow):
    name_flow = "gated"
    timeouts = Timeouts(dispatch=10, heartbeat=5, execution=60)
    steps_flow = FlowBuilder(
        FlowBlock(Build),
        FlowBlock(WaitForSignal("approved", timeout=3600)),
        FlowBlock(WaitForChart("rollout", state=["go", "done"], machine="eu", poll=2)),
        FlowBlock(Build),
    )


GATED_YAML = """\
flows:
  - name: gated
    timeouts: {dispatch: 10, heartbeat: 5, execution: 60}
    steps:
      - {block: build, service: ci}
      - wait: {signal: approved, timeout: 3600}
      - wait: {chart: rollout, state: [go, done], machine: eu, poll: 2}
      - {block: build, service: ci}
"""


def test_a_yaml_wait_flow_has_its_python_twins_spec_and_version() -> None:
    (flow,) = parse_flow_file(GATED_YAML).flows
    assert flow.spec() == Gated.spec()
    assert flow.spec().version == Gated.spec().version


def test_a_wait_is_part_of_the_version() -> None:
    spec = Gated.spec()
    signal, chart = spec.steps[1], spec.steps[2]
    assert (signal.name, signal.service, signal.command) == (
        "wait_approved",
        WAITS_SERVICE,
        "signal",
    )
    assert signal.wait == WaitSpec(kind="signal", signal="approved", poll=300)
    assert chart.wait == WaitSpec(
        kind="chart", chart="rollout", machine="eu", states=("go", "done"), poll=2
    )
    other = parse_flow_file(GATED_YAML.replace("signal: approved", "signal: vetted")).flows[0]
    assert other.spec().version != spec.version


def test_a_flow_without_waits_keeps_its_version() -> None:
    class Plain(Flow):
        name_flow = "plain"
        steps_flow = FlowBuilder(FlowBlock(Build))

    dumped = Plain.spec().model_dump(mode="json", exclude_none=True)
    assert "wait" not in dumped["steps"][0]  # nothing new goes into the hash


def test_the_planner_sends_no_command_and_checks_at_once() -> None:
    spec = Gated.spec()
    planner = Planner(Timeouts(dispatch=30), "orch.reply")
    wait = spec.steps[1]
    limits = planner.timeouts(wait)
    assert limits == Timeouts(total=3600)  # the flow's dispatch/heartbeat/execution are off
    planned = planner.dispatch(spec, wait, lane=Lane.RUN, run_id="r1", attempt=1, body=1, now=100)
    assert planned.command.notify_start is False
    assert sorted(planned.timers) == [
        ("r1|total|run|1|0", 3700.0),
        ("r1|wait|run|1|1", 100.0),
    ]
    assert "r1|wait|run|1|1" in planner.attempt_timers("r1", Lane.RUN, wait, 1)
    build = spec.steps[0]
    assert all(
        f"|{TimerKind.WAIT.value}|" not in m
        for m in planner.attempt_timers("r1", Lane.RUN, build, 1)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "chart", "chart": "c"},
        {"kind": "chart", "states": ("s",)},
        {"kind": "chart", "chart": "c", "states": ("s",), "signal": "x"},
        {"kind": "signal"},
        {"kind": "signal", "signal": "x", "chart": "c"},
        {"kind": "signal", "signal": "bad name"},
        {"kind": "signal", "signal": "x", "poll": 0},
        {"kind": "other", "signal": "x"},
    ],
)
def test_bad_wait_specs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WaitSpec.model_validate(kwargs)


def test_a_wait_declares_no_compensation() -> None:
    with pytest.raises(FlowBlockException, match="cannot declare a compensation"):

        class Undo(Flow):
            name_flow = "undo"
            steps_flow = FlowBuilder(FlowBlock(WaitForSignal("x"), compensate="back"))


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ("wait: {signal: go, state: s}", "a signal wait has no `machine` or `state`"),
        ("wait: {chart: c}", "names the `state`"),
        ("wait: {chart: c, signal: s, state: x}", "either a `chart`"),
        ("wait: {}", "either a `chart`"),
        ("{wait: {signal: go}, service: s}", "a wait step has no `service`"),
        ("{wait: {signal: go}, compensate: u}", "a wait step has no `compensate`"),
        ("{wait: {signal: go}, timeouts: {total: 3}}", "its limit is `wait.timeout`"),
        ("{wait: {signal: go, timeout: -1}}", "greater than 0"),
        ("{wait: {signal: go, poll: 7200}}", "less than or equal to 3600"),
        ("{wait: {signal: go, when: now}}", "unknown field"),
        ("{service: s}", "names a `block`"),
    ],
)
def test_bad_wait_steps_in_yaml_are_refused(step: str, problem: str) -> None:
    text = f"flows:\n  - name: f\n    steps:\n      - {step}\n"
    with pytest.raises(FlowFileError) as caught:
        parse_flow_file(text, "bad.yaml")
    message = str(caught.value)
    assert message.startswith("bad.yaml:4: flows[0].steps[0]"), message
    assert problem in message, message


def test_no_service_takes_the_waits_name() -> None:
    from orch_serv import Service
    from orch_serv.exceptions import ServiceBlockException

    with pytest.raises(ServiceBlockException, match="reserved for wait steps"):
        Service(WAITS_SERVICE)
