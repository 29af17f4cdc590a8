"""Flows in YAML: a YAML flow is the same definition (spec and version hash) as its Python
twin, the example flows' YAML twins equal the Python flows, and an orchestrator is loaded from a
flow file (also through the app loader the CLI uses)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import flows.ingest
import flows.legacy02
from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator, RetryPolicy, Timeouts
from orch_serv.constants import RunState
from orch_serv.flow.spec import FlowSpec
from orch_serv.flow.yamlflows import (
    is_flow_file,
    load_flow_file,
    load_orchestrator,
    parse_flow_file,
)
from orch_serv.loader import load
from orch_serv.testing import KitFactory
from services_examples import DATA_DIR
from tests.unit import yaml_flows_hooks as hooks

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"


def specs(orchestrator: Orchestrator) -> dict[tuple[str, str], FlowSpec]:
    """Every flow and block spec of an orchestrator, by kind and name."""
    return {(s.kind, s.name): s for s in orchestrator.registry.specs()}


# -- the example flows' twins ------------------------------------------------------------------
def test_ingest_yaml_twin_equals_the_python_flows_and_blocks() -> None:
    yaml_orch = load_orchestrator(FLOWS / "ingest.yaml")
    python_orch = flows.ingest.orchestrator

    assert specs(yaml_orch) == specs(python_orch)
    assert list(specs(yaml_orch)) == list(specs(python_orch))  # the same order
    assert yaml_orch.registry.default_flow == python_orch.registry.default_flow == "ingest"
    assert [s.name for s in yaml_orch.services] == [s.name for s in python_orch.services]


@pytest.mark.parametrize("flow", [flows.ingest.IngestFlow, flows.ingest.ProfileFlow])
def test_each_ingest_flow_has_its_python_twins_version(flow: type[Flow]) -> None:
    loaded = {f.name_flow: f.spec() for f in load_flow_file(FLOWS / "ingest.yaml").flows}
    assert loaded[flow.name_flow].version == flow.spec().version
    assert loaded[flow.name_flow] == flow.spec()


def test_billing_yaml_twin_equals_the_python_flow() -> None:
    yaml_orch = load_orchestrator(FLOWS / "billing.yaml")
    assert specs(yaml_orch) == specs(flows.legacy02.billing)
    assert [s.name for s in yaml_orch.services] == ["BillingService"]


def test_every_yaml_file_in_flows_loads() -> None:
    found = sorted(FLOWS.glob("*.yaml"))
    assert {p.name for p in found} >= {"ingest.yaml", "billing.yaml"}
    for path in found:
        assert load_orchestrator(path).get_list_flows()


# -- every field maps onto the Python definition -----------------------------------------------
class Charge(Block):
    name_block = "charge"
    service = "payments"
    retry = RetryPolicy(max_attempts=5, initial_delay=0.5, non_retryable=frozenset({"Fraud"}))
    compensate = "refund"


class Everything(Flow):
    name_flow = "everything"
    retry_policy = RetryPolicy(max_attempts=3, backoff=1.5, jitter=0.1)
    timeouts = Timeouts(dispatch=30, total=600)
    deadline = 3600
    status_model = "ORDER"
    steps_flow = FlowBuilder(
        FlowBlock(Block("check", service="orders", command="validate"), hooks.stamp),
        FlowBlock(Charge, post_handler_function=hooks.audit),
        FlowBlock(Block("ship", service="warehouse"), timeouts=Timeouts(execution=120)),
        FlowBlock(
            Block("check", service="orders", command="validate"),
            retry=RetryPolicy(max_attempts=2),
            compensate="undo_check",
        ),
    )


EVERYTHING = """
blocks:
  - name: charge
    service: payments
    retry: {max_attempts: 5, initial_delay: 0.5, non_retryable: [Fraud]}
    compensate: refund
flows:
  - name: everything
    retry: {max_attempts: 3, backoff: 1.5, jitter: 0.1}
    timeouts: {dispatch: 30, total: 600}
    deadline: 3600
    status_model: ORDER
    steps:
      - block: check
        service: orders
        command: validate
        pre_hook: "tests.unit.yaml_flows_hooks:stamp"
      - block: charge
        post_hook: "tests.unit.yaml_flows_hooks:audit"
      - {block: ship, service: warehouse, timeouts: {execution: 120}}
      - block: check
        service: orders
        command: validate
        retry: {max_attempts: 2}
        compensate: undo_check
"""


def test_every_field_gives_the_python_spec_and_version() -> None:
    (flow,) = parse_flow_file(EVERYTHING).flows
    spec = flow.spec()
    assert spec == Everything.spec()
    assert spec.version == Everything.spec().version
    assert [s.name for s in spec.steps] == ["check_0", "charge", "ship", "check_3"]
    assert spec.steps[2].timeouts == Timeouts(dispatch=30, execution=120, total=600)
    assert spec.steps[1].post_hook == "tests.unit.yaml_flows_hooks.audit"


def test_the_hooks_are_the_imported_callables() -> None:
    (flow,) = parse_flow_file(EVERYTHING).flows
    steps = flow().compile()
    assert steps[0].pre is hooks.stamp
    assert steps[1].post is hooks.audit
    assert steps[2].pre is None and steps[2].post is None


def test_a_static_method_hook_is_named_like_its_python_twin() -> None:
    class Tagged(Flow):
        name_flow = "tagged"
        steps_flow = FlowBuilder(
            FlowBlock(Block("a", service="s"), post_handler_function=hooks.Hooks.tag)
        )

    text = (
        "flows:\n  - name: tagged\n    steps:\n      - block: a\n        service: s\n"
        "        post_hook: 'tests.unit.yaml_flows_hooks:Hooks.tag'\n"
    )
    (flow,) = parse_flow_file(text).flows
    assert flow.spec() == Tagged.spec()
    assert flow.spec().steps[0].post_hook == "tests.unit.yaml_flows_hooks.Hooks.tag"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("max_attempts: 2}", "max_attempts: 4}"),
        ("deadline: 3600", "deadline: 3601"),
        ("status_model: ORDER", "status_model: SHIPMENT"),
        ("compensate: undo_check", "compensate: undo"),
        ("execution: 120", "execution: 121"),
        ('"tests.unit.yaml_flows_hooks:audit"', '"tests.unit.yaml_flows_hooks:stamp"'),
    ],
)
def test_a_different_definition_has_another_version(old: str, new: str) -> None:
    assert old in EVERYTHING
    (changed,) = parse_flow_file(EVERYTHING.replace(old, new)).flows
    assert changed.spec().version != Everything.spec().version


def test_descriptions_and_comments_are_not_part_of_the_version() -> None:
    text = EVERYTHING.replace("  - name: everything\n", "  - name: everything  # hi\n")
    text = text.replace("    deadline: 3600\n", "    deadline: 3600\n    description: Docs\n")
    (flow,) = parse_flow_file(text).flows
    assert flow.spec().version == Everything.spec().version
    assert flow.__doc__ == "Docs"


def test_defaults_services_and_several_flows() -> None:
    loaded = parse_flow_file(
        """
flows:
  - {name: one, steps: [{block: echo, service: yamltest}]}
  - {name: two, steps: [{block: echo}, {block: echo}]}
blocks: [{name: echo, service: yamltest}]
default_flow: two
default_block: echo
services: ["tests.unit.yaml_flows_hooks:service"]
"""
    )
    assert [f.name_flow for f in loaded.flows] == ["one", "two"]
    assert [b.name_block for b in loaded.blocks] == ["echo"]
    assert (loaded.default_flow, loaded.default_block) == ("two", "echo")
    assert loaded.services == (hooks.service,)


# -- loading an orchestrator -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [("flows/ingest.yaml", True), ("x.YML", True), ("flows.ingest:orchestrator", False)],
)
def test_is_flow_file(path: str, expected: bool) -> None:
    assert is_flow_file(path) is expected


def test_the_app_loader_reads_a_flow_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    loaded: Any = load("flows/ingest.yaml")
    assert isinstance(loaded, Orchestrator)
    assert loaded.get_list_flows() == ["ingest", "profile"]


async def test_the_yaml_ingest_flow_runs_with_the_kit(
    orch_serv_kit: KitFactory, tmp_path: Path
) -> None:
    kit = await orch_serv_kit(load_orchestrator(FLOWS / "ingest.yaml"))
    source = tmp_path / "trips.csv"
    shutil.copy(DATA_DIR / "city_bike_trips.csv", source)
    body = {"dataset_id": "trips", "path": str(source), "workdir": str(tmp_path)}
    record = await kit.run("ingest", body)
    assert record.state is RunState.SUCCEEDED, record.error
    manifest = (tmp_path / "published" / "trips" / "manifest.json").read_text()
    assert record.run_id in manifest  # the post hook imported by path ran
