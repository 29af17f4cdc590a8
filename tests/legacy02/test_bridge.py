"""The bridge, in process (embedded backends): a 0.2 orchestrator run as distributed flows,
and 0.2 services hosted by the service worker."""

from __future__ import annotations

from typing import Any

import pytest

from orch_serv import RunState
from orch_serv.exceptions import FlowNotFound, NonRetryableError
from orch_serv.legacy02 import wire
from orch_serv.legacy02.bridge import SERVICE, Bridge, result_message, safe_name
from orch_serv.orchestrator import FlowBlock, FlowBuilder, SyncBlock, SyncFlow, SyncOrchestrator
from orch_serv.service import (
    CommandHandlerPostProcessStrategy,
    CommandHandlerProcessStrategy,
    Service,
    ServiceBlock,
    ServiceBuilder,
)
from orch_serv.testing import KitFactory
from tests.conftest import eventually
from tests.legacy02 import bridge_app
from tests.legacy02.models import Msg, msg


@pytest.fixture(autouse=True)
def _clear() -> None:
    bridge_app.HOOKS.clear()


def test_definitions() -> None:
    bridge = Bridge(bridge_app.orchestrator)
    orch = bridge.orchestrator()
    assert orch.get_list_flows() == ["main_flow", "retried", "twice"]
    assert orch.get_list_blocks() == ["add_one"]
    assert bridge.service.name == SERVICE
    assert bridge.service.commands == [
        "main_flow.add_one",
        "main_flow.silent",
        "main_flow.quiet",
        "retried.flaky",
        "twice.add_one_0",
        "twice.add_one_1",
        "target.add_one",
    ]
    assert orch.services == [bridge.service]


def test_safe_name() -> None:
    assert safe_name("first block") == "first_block"
    assert safe_name("a/b:c") == "a_b_c"
    assert safe_name("") == "_"
    assert len(safe_name("x" * 300)) == 128


def test_bridge_needs_a_0_2_orchestrator() -> None:
    with pytest.raises(TypeError, match="SyncOrchestrator or AsyncOrchestrator"):
        Bridge(object())  # type: ignore[arg-type]


def test_route_by_0_2_rules() -> None:
    bridge = Bridge(bridge_app.orchestrator)
    assert bridge.route(msg(flow="main flow", target="add one")) == (None, "add_one")
    assert bridge.route(msg(flow="main flow")) == ("main_flow", None)
    assert bridge.route(msg(flow="unknown")) == ("twice", None)  # the default flow
    with pytest.raises(FlowNotFound, match="unknown target"):
        bridge.route(msg(target="unknown"))
    with pytest.raises(FlowNotFound, match="neither a flow nor a target"):
        bridge.route(msg())


async def test_flow_runs_with_hooks_source_and_nullable_rule(orch_serv_kit: KitFactory) -> None:
    bridge = Bridge(bridge_app.orchestrator)
    kit = await orch_serv_kit(bridge.orchestrator())
    record = await kit.wait(await bridge.start(kit.running, msg(1, flow="main flow")))
    assert record.state is RunState.SUCCEEDED
    result = result_message(record)
    assert isinstance(result, Msg)  # rebuilt with the user's class
    assert result.body.value == 202 and result.get_source() == "quiet"
    assert bridge_app.HOOKS == [
        ("pre", 1),
        ("post", "add one", 2),  # the returned message
        ("post", "silent", 2),  # nothing returned: a copy of the input, source already set
    ]  # quiet: nothing returned and is_execute_after_nullable_process_msg = False
    assert await kit.history(record.run_id) == [
        "run_created",
        "run_started",
        *["step_dispatched", "step_completed"] * 3,
        "run_succeeded",
    ]


async def test_falsy_pre_hook_ends_the_run(orch_serv_kit: KitFactory) -> None:
    bridge = Bridge(bridge_app.orchestrator)
    kit = await orch_serv_kit(bridge.orchestrator())
    record = await kit.wait(await bridge.start(kit.running, msg(-1, flow="main flow")))
    assert record.state is RunState.SUCCEEDED
    assert bridge_app.HOOKS == [("pre", -1)]
    result = result_message(record)
    assert result is not None and result.body.value == -1


async def test_target_runs_process_only(orch_serv_kit: KitFactory) -> None:
    bridge = Bridge(bridge_app.orchestrator)
    kit = await orch_serv_kit(bridge.orchestrator())
    record = await kit.wait(await bridge.start(kit.running, msg(5, target="add one")))
    result = result_message(record)
    assert record.state is RunState.SUCCEEDED
    assert result is not None and result.body.value == 6 and result.get_source() is None


async def test_retry_policy_of_a_0_2_block(orch_serv_kit: KitFactory) -> None:
    bridge = Bridge(bridge_app.orchestrator)
    kit = await orch_serv_kit(bridge.orchestrator())
    record = await kit.wait(await bridge.start(kit.running, msg(flow="retried")))
    assert record.state is RunState.SUCCEEDED
    assert "retry_scheduled" in await kit.history(record.run_id)


async def test_default_flow_and_duplicate_blocks(orch_serv_kit: KitFactory) -> None:
    bridge = Bridge(bridge_app.orchestrator)
    kit = await orch_serv_kit(bridge.orchestrator())
    record = await kit.wait(await bridge.start(kit.running, msg(0, flow="not a flow")))
    result = result_message(record)
    assert result is not None and result.body.value == 2
    assert result.get_source() == "add one_1"


async def test_sync_orchestrator(orch_serv_kit: KitFactory) -> None:
    bridge = Bridge(bridge_app.sync_orchestrator)
    kit = await orch_serv_kit(bridge.orchestrator())
    for message in (msg(1, flow="sync main"), msg(1, target="sync add")):
        record = await kit.wait(await bridge.start(kit.running, message))
        result = result_message(record)
        assert result is not None and result.body.value == 11


async def test_failing_process_fails_the_run(orch_serv_kit: KitFactory) -> None:
    class Broken(SyncBlock):
        name_block = "broken"

        def process(self, message: Msg) -> Msg:
            raise ValueError("broken block")

    class BrokenFlow(SyncFlow):
        name_flow = "broken"
        steps_flow = FlowBuilder(FlowBlock(Broken))

    bridge = Bridge(SyncOrchestrator(flows=[BrokenFlow]))
    kit = await orch_serv_kit(bridge.orchestrator())
    record = await kit.wait(await bridge.start(kit.running, msg(flow="broken")))
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "ValueError"


# -- 0.2 services hosted by the worker ---------------------------------------------------------
POSTED: list[Any] = []


class Double(CommandHandlerProcessStrategy):
    target_command = "double"

    def process(self, msg: Msg) -> tuple[Msg, str]:
        msg.body.value *= 2
        return msg, "doubled"


class Drop(CommandHandlerProcessStrategy):
    target_command = "drop"

    def process(self, msg: Msg) -> None:
        return None


class Record(CommandHandlerPostProcessStrategy):
    def post_process(self, msg: Any, additional_data: Any = None) -> None:
        POSTED.append((type(msg).__name__, msg.body.value, additional_data))


class Calc(Service):
    service_commands = ServiceBuilder(ServiceBlock(Double, Record), ServiceBlock(Drop, Record))


async def _posted() -> bool:
    return bool(POSTED)


def _orchestrator(service: Service) -> Any:
    from orch_serv import Block, Flow, Orchestrator

    class Calculation(Flow):
        name_flow = "calc"
        steps_flow = FlowBuilder(
            FlowBlock(Block("double", service=service.name)),
            FlowBlock(Block("drop", service=service.name)),
        )

    return Orchestrator(flows=[Calculation], services=[service])


async def test_0_2_service_receives_the_user_message(orch_serv_kit: KitFactory) -> None:
    POSTED.clear()
    service = Calc()
    kit = await orch_serv_kit(_orchestrator(service))
    record = await kit.wait(await kit.start("calc", wire.dump(msg(4))))
    assert record.state is RunState.SUCCEEDED
    result = result_message(record)
    assert result is not None and result.body.value == 8  # drop returned None: passed on
    await eventually(_posted)  # the post-processor runs after the reply's ack
    assert POSTED == [("Msg", 8, "doubled")]  # (msg, additional_data); none after `drop`


async def test_0_2_service_plain_body_validated_against_the_annotation(
    orch_serv_kit: KitFactory,
) -> None:
    POSTED.clear()
    kit = await orch_serv_kit(_orchestrator(Calc()))
    record = await kit.wait(await kit.start("calc", msg(3).model_dump(mode="json")))
    assert record.state is RunState.SUCCEEDED
    assert record.result["orch_serv_02"]["message"]["body"] == {"value": 6}


async def test_0_2_service_rejects_a_body_it_cannot_rebuild(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(_orchestrator(Calc()))
    record = await kit.wait(await kit.start("calc", {"not": "a message"}))
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "ValidationError"
    assert record.error.retryable is False


def test_wire_errors() -> None:
    with pytest.raises(NonRetryableError, match=r"unknown 0\.2 message class"):
        wire.load({wire.KEY: {"type": "nowhere:Nothing", "message": {}}})
    with pytest.raises(NonRetryableError, match="names no message class"):
        wire.load({"body": {}})
    from orch_serv.msg import BaseOrchServMsg

    class Other(BaseOrchServMsg[dict[str, int], None]):
        pass

    with pytest.raises(NonRetryableError, match="the handler expects"):
        wire.load(wire.dump(msg()), Other)
    assert wire.load(wire.dump(msg(9))).body.value == 9


def test_route_rejects_non_messages() -> None:
    with pytest.raises(TypeError, match="must be a BaseOrchServMsg"):
        Bridge(bridge_app.orchestrator).route({"flow": "main flow"})  # type: ignore[arg-type]


def test_names_colliding_once_made_safe() -> None:
    from orch_serv.exceptions import UniqueNameException

    class Spaced(SyncFlow):
        name_flow = "a b"
        steps_flow = FlowBuilder(FlowBlock(bridge_app.SyncAdd))

    class Underscored(SyncFlow):
        name_flow = "a_b"
        steps_flow = FlowBuilder(FlowBlock(bridge_app.SyncAdd))

    with pytest.raises(UniqueNameException, match="'a b' and 'a_b' both become 'a_b'"):
        Bridge(SyncOrchestrator(flows=[Spaced, Underscored]))


async def test_two_argument_post_processor_of_a_named_service(orch_serv_kit: KitFactory) -> None:
    # the worker called every post-processor with (result, extra, ctx): a 0.2-style
    # post_process(msg, additional_data) failed with a logged TypeError (fixed)
    from orch_serv import Block, Flow, Orchestrator

    seen: list[Any] = []
    named = Service("named")

    def after(result: Any, extra: Any) -> None:
        seen.append((result, extra))

    @named.command("echo", post_process=after)
    def echo(body: Any) -> Any:
        return body, "extra"

    class Echo(Flow):
        name_flow = "echo"
        steps_flow = FlowBuilder(FlowBlock(Block("echo", service="named")))

    kit = await orch_serv_kit(Orchestrator(flows=[Echo], services=[named]))
    record = await kit.wait(await kit.start("echo", {"a": 1}))
    assert record.state is RunState.SUCCEEDED

    async def posted() -> bool:
        return bool(seen)

    await eventually(posted)
    assert seen == [({"a": 1}, "extra")]


async def test_0_2_processor_with_a_distributed_post_processor(orch_serv_kit: KitFactory) -> None:
    from orch_serv import Block, Flow, Orchestrator
    from orch_serv.service import CommandHandlerPostProcess

    seen: list[Any] = []

    class WithContext(CommandHandlerPostProcess):
        def post_process(self, result: Any, extra: Any, ctx: Any) -> None:
            seen.append((type(result).__name__, extra, ctx.step))

    named = Service("mixed", ServiceBuilder(ServiceBlock(Double, WithContext)))

    class Mixed(Flow):
        name_flow = "mixed"
        steps_flow = FlowBuilder(FlowBlock(Block("double", service="mixed")))

    kit = await orch_serv_kit(Orchestrator(flows=[Mixed], services=[named]))
    record = await kit.wait(await kit.start("mixed", wire.dump(msg(2))))
    assert record.state is RunState.SUCCEEDED

    async def posted() -> bool:
        return bool(seen)

    await eventually(posted)
    assert seen == [("Msg", "doubled", 0)]
