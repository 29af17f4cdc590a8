"""Group steps as definitions: their spec and version (the same from Python and YAML, no change
to flows without groups), the branch flows registered with their parent, what the planner
makes of them, the join policies' verdicts, and bad group definitions refused clearly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Map, Parallel
from orch_serv.constants import Lane, RunState, TimerKind
from orch_serv.exceptions import FlowBlockException
from orch_serv.flow.groups import (
    GROUPS_SERVICE,
    BranchRef,
    GroupSpec,
    member_id,
    parse_member_id,
)
from orch_serv.flow.policy import Timeouts
from orch_serv.flow.registry import FlowRegistry
from orch_serv.flow.yamlflows import FlowFileError, parse_flow_file
from orch_serv.orchestrator.core import Planner
from orch_serv.orchestrator.core.joins import counts, decide
from tests.apps.groups import Doubles, Formats

TWINS_YAML = """\
flows:
  - name: formats
    steps:
      - {block: echo, service: shop}
      - parallel:
          join: all
          branches:
            up: [{block: upper, service: shop}]
            down: [{block: lower, service: shop}, {block: wrap, service: shop}]
      - {block: wrap, service: shop}
  - name: doubles
    steps:
      - map:
          max_concurrency: 5
          steps: [{block: double, service: shop, timeouts: {execution: 30}}]
      - {block: wrap, service: shop}
"""


class Step(Block):
    name_block = "step"
    service = "svc"


def test_the_yaml_twins_have_the_python_versions() -> None:
    loaded = parse_flow_file(TWINS_YAML, "twins.yaml")
    by_name = {f.spec().name: f.spec() for f in loaded.flows}
    assert by_name["formats"] == Formats.spec()
    assert by_name["doubles"] == Doubles.spec()
    assert by_name["formats"].version == Formats.spec().version


def test_a_group_step_is_kept_by_the_orchestrators() -> None:
    step = Formats.spec().steps[1]
    assert step.service == GROUPS_SERVICE and step.kept and step.wait is None
    assert step.group is not None and step.group.kind == "parallel"
    assert [b.name for b in step.group.branches] == ["up", "down"]
    assert [b.flow for b in step.group.branches] == ["formats~parallel~up", "formats~parallel~down"]
    plain = Formats.spec().steps[0]
    assert "group" not in plain.model_dump(exclude_none=True)  # no change to other steps


def test_changing_a_branch_changes_the_parent_version() -> None:
    def flow(command: str) -> type[Flow]:
        branch = Block("b", service="svc", command=command)
        return type(
            "F",
            (Flow,),
            {
                "name_flow": "f",
                "steps_flow": FlowBuilder(FlowBlock(Parallel({"x": FlowBlock(branch)}))),
            },
        )

    assert flow("one").spec().version != flow("two").spec().version


def test_the_registry_registers_the_branch_flows() -> None:
    registry = FlowRegistry([Formats, Doubles])
    names = {s.name for s in registry.specs()}
    assert {"formats~parallel~up", "formats~parallel~down", "doubles~map~each"} <= names
    assert registry.get_list_flows() == ["formats", "doubles"]  # not listed as flows
    ref = Formats.spec().steps[1].group.branches[1]  # type: ignore[union-attr]
    branch = registry.version("flow", ref.flow, ref.version)
    assert branch is not None and [s.name for s in branch.spec.steps] == ["lower", "wrap"]


def test_the_planner_sets_the_group_check_due_at_once() -> None:
    spec = Formats.spec()
    planner = Planner(Timeouts(dispatch=5, heartbeat=5, execution=5), "reply")
    plan = planner.dispatch(
        spec, spec.steps[1], lane=Lane.RUN, run_id="r1", attempt=1, body={}, now=100.0
    )
    assert plan.timers == [("r1|group|run|1|1", 100.0)]  # no dispatch clock for a group
    assert str(TimerKind.GROUP) not in "".join(
        planner.attempt_timers("r1", Lane.RUN, spec.steps[1], 1)
    )


def test_member_ids_round_trip() -> None:
    child = member_id("abc", 2, 1, 17)
    assert child == "abc~2.1.17"
    assert parse_member_id(child) == ("abc", 2, 1, 17)
    assert parse_member_id(member_id(child, 0, 3, 4)) == (child, 0, 3, 4)  # nested groups
    assert parse_member_id("abc") is None and parse_member_id("a~b") is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Parallel({"a": FlowBlock(Step)}, join="most"), "join must be one of"),
        (lambda: Parallel({"a": FlowBlock(Step)}, join="n_of_m", n=2), "cannot be met by 1"),
        (lambda: Parallel({"a": FlowBlock(Step)}, join="n_of_m"), "needs n"),
        (lambda: Parallel({"a": FlowBlock(Step)}, n=1), "only for join 'n_of_m'"),
        (lambda: Parallel({}), "non-empty mapping"),
        (lambda: Parallel({"a": []}), "non-empty list"),
        (lambda: Parallel({"a b": FlowBlock(Step)}), "branch names"),
        (lambda: Parallel({"a": Step}), "must be a FlowBlock"),  # type: ignore[dict-item]
        (lambda: Map(FlowBlock(Step), max_concurrency=0), "max_concurrency must be >= 1"),
        (lambda: Map(FlowBlock(Step), max_concurrency=-3), "max_concurrency must be >= 1"),
        (lambda: Map(FlowBlock(Step), max_concurrency=1.5), "whole number"),  # type: ignore[arg-type]
        (lambda: Map(FlowBlock(Step), poll=0), "poll"),
    ],
)
def test_bad_groups_are_refused_clearly(make: object, message: str) -> None:
    with pytest.raises(FlowBlockException, match=message):
        make()  # type: ignore[operator]


def test_a_group_declares_no_compensation_and_needs_a_flow() -> None:
    group = Parallel({"a": FlowBlock(Step)})
    with pytest.raises(FlowBlockException, match="compensation"):
        type(
            "G",
            (Flow,),
            {"name_flow": "g", "steps_flow": FlowBuilder(FlowBlock(group, compensate="undo"))},
        )
    with pytest.raises(FlowBlockException, match="cannot run on its own"):
        FlowRegistry(blocks=[group])


def test_the_stored_spec_checks_its_shape() -> None:
    ref = BranchRef(name="each", flow="f~m~each", version="v")
    with pytest.raises(ValidationError, match="exactly one branch"):
        GroupSpec(kind="map", branches=(ref, ref.model_copy(update={"name": "b"})))
    with pytest.raises(ValidationError, match="only for a map"):
        GroupSpec(kind="parallel", branches=(ref,), max_concurrency=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parallel: {branches: {}}", "at least 1"),
        ("parallel: {branches: {a: []}}", "has no steps"),
        ("parallel: {join: most, branches: {a: [{block: s, service: v}]}}", "all"),
        (
            "parallel: {join: n_of_m, n: 3, branches: {a: [{block: s, service: v}]}}",
            "cannot be met",
        ),
        ("map: {steps: [{block: s, service: v}], max_concurrency: 0}", "greater than or equal"),
        ("map: {steps: []}", "at least 1"),
        ("{map: {steps: [{block: s, service: v}]}, service: v}", "has no `service`"),
    ],
)
def test_bad_yaml_groups_are_refused_with_the_place(text: str, message: str) -> None:
    source = f"flows:\n  - name: g\n    steps:\n      - {text}\n"
    with pytest.raises(FlowFileError, match=message):
        parse_flow_file(source, "bad.yaml")


S, F, T, C = RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED


def _group(join: str, n: int | None = None) -> GroupSpec:
    refs = tuple(BranchRef(name=f"b{i}", flow="f", version="v") for i in range(4))
    return GroupSpec(kind="parallel", branches=refs, join=join, n=n)


def test_the_join_policies_decide() -> None:
    assert not decide(_group("all"), 4, {0: S, 1: F}).over  # all waits for everyone
    verdict = decide(_group("all"), 4, {0: S, 1: F, 2: S, 3: T})
    assert verdict.over and not verdict.ok and not verdict.cancel_rest
    assert verdict.reason == "2 of 4 member(s) failed (1 FAILED, 1 TIMED_OUT)"
    assert decide(_group("fail_fast"), 4, {0: S, 1: C}) == decide(_group("fail_fast"), 4, {1: C})
    assert decide(_group("fail_fast"), 4, {1: C}).cancel_rest
    assert decide(_group("any"), 4, {0: F, 1: S}).ok
    assert not decide(_group("any"), 4, {0: F, 1: F, 2: F}).over
    assert decide(_group("any"), 4, {0: F, 1: F, 2: F, 3: F}).over
    assert not decide(_group("n_of_m", 3), 4, {0: S, 1: F}).over
    lost = decide(_group("n_of_m", 3), 4, {0: S, 1: F, 2: F})
    assert lost.over and not lost.ok and lost.cancel_rest
    assert decide(_group("n_of_m", 2), 4, {0: S, 3: S}).ok
    assert not decide(_group("collect"), 4, {0: F, 1: F, 2: F}).over
    assert decide(_group("collect"), 4, {0: F, 1: F, 2: F, 3: C}).ok
    assert counts(4, 3, {0: S, 1: F}) == {"FAILED": 1, "RUNNING": 1, "SUCCEEDED": 1, "WAITING": 1}
