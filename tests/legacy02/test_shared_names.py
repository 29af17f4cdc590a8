"""Names shared by the 0.2 and the distributed models: either use works, and neither leaks
into the other (docs/architecture.md, "orch_serv 0.2 names")."""

from __future__ import annotations

from typing import Any

import pytest

import orch_serv
from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Service, ServiceBlock, ServiceBuilder
from orch_serv import exceptions as x
from orch_serv.legacy02.flows import LegacyFlowBlock
from orch_serv.orchestrator import SyncBlock, SyncFlow
from orch_serv.service import CommandHandler, CommandHandlerProcessStrategy
from tests.legacy02.models import Msg

SPEC_EXPORTS = [
    "BaseOrchServMsg",
    "SyncBlock",
    "AsyncBlock",
    "SyncFlow",
    "AsyncFlow",
    "AsyncOrchestrator",
    "SyncOrchestrator",
    "FlowBlock",
    "FlowBuilder",
    "AsyncCommandHandlerPostProcessStrategy",
    "AsyncCommandHandlerProcessStrategy",
    "AsyncService",
    "CommandHandlerPostProcessStrategy",
    "CommandHandlerProcessStrategy",
    "Service",
    "ServiceBlock",
    "ServiceBuilder",
    "Stepper",
    "StepsBuilder",
    "Step",
]


class Legacy(SyncBlock):
    name_block = "legacy"

    def process(self, message: Msg) -> Msg:
        return message


def test_top_level_exports_of_0_2() -> None:
    for name in SPEC_EXPORTS:
        assert name in orch_serv.__all__, name
        assert getattr(orch_serv, name) is not None


def test_0_2_module_paths_import() -> None:
    import importlib

    for path in (
        "orch_serv.msg",
        "orch_serv.exc",
        "orch_serv.orchestrator",
        "orch_serv.orchestrator.block",
        "orch_serv.orchestrator.flow",
        "orch_serv.orchestrator.orchestrator",
        "orch_serv.service",
        "orch_serv.stepper",
        "orch_serv.stepper.utils",
    ):
        importlib.import_module(path)


def test_flow_block_of_a_0_2_block_is_a_legacy_flow_block() -> None:
    step = FlowBlock(Legacy)
    assert isinstance(step, LegacyFlowBlock) and isinstance(step, FlowBlock)
    distributed = FlowBlock(Block("d", service="s"))
    assert not isinstance(distributed, LegacyFlowBlock)
    assert distributed.block.name_block == "d"


def test_distributed_flow_rejects_0_2_blocks() -> None:
    with pytest.raises(x.FlowBlockException, match=r"orch_serv 0\.2 block"):

        class Mixed(Flow):
            name_flow = "mixed"
            steps_flow = FlowBuilder(FlowBlock(Legacy))


def test_0_2_flow_rejects_distributed_blocks() -> None:
    from orch_serv.exc import WorkTypeMismatchException

    class Mixed(SyncFlow):
        name_flow = "mixed"
        steps_flow = FlowBuilder(FlowBlock(Block("d", service="s")))

    with pytest.raises(WorkTypeMismatchException):
        Mixed()


def test_one_flow_builder_for_both() -> None:
    builder = FlowBuilder(FlowBlock(Legacy), FlowBlock(Block("d", service="s")))
    assert len(builder) == 2


class Handler(CommandHandler):
    target_command = "distributed"

    def process(self, body: Any, ctx: Any) -> Any:
        return body


class Strategy(CommandHandlerProcessStrategy):
    target_command = "legacy"

    def process(self, msg: Msg) -> Msg:
        return msg


def test_service_with_a_name_is_distributed() -> None:
    service = Service("svc", ServiceBuilder(ServiceBlock(Handler), ServiceBlock(Strategy)))
    assert service.legacy is False and service.name == "svc"
    assert service.commands == ["distributed", "legacy"]
    spec = service.resolve("distributed")
    assert spec is not None and spec.takes_context is True


def test_service_without_a_name_is_0_2() -> None:
    service = Service(ServiceBuilder(ServiceBlock(Strategy)))
    assert service.legacy is True and service.commands == ["legacy"]


def test_0_2_service_rejects_distributed_handlers() -> None:
    with pytest.raises(TypeError, match="Must be a `CommandHandlerProcessStrategy`"):
        Service(ServiceBuilder(ServiceBlock(Handler)))


def test_post_processor_with_two_parameters_gets_two_arguments() -> None:
    from orch_serv.service.handler import describe

    def two(result: Any, extra: Any) -> None:
        return None

    def three(result: Any, extra: Any, ctx: Any) -> None:
        return None

    assert describe("c", lambda b: b, two).post_takes_context is False
    assert describe("c", lambda b: b, three).post_takes_context is True


def test_envelope_is_not_the_0_2_message() -> None:
    from orch_serv.messages import Envelope

    assert not issubclass(orch_serv.BaseOrchServMsg, Envelope)
    assert orch_serv.Envelope is Envelope


def test_import_configures_no_logging() -> None:
    import subprocess
    import sys

    code = "import logging, orch_serv, orch_serv.legacy02.bridge; print(logging.root.handlers)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # 0.2 called logging.basicConfig at import time


def test_init_block_of_a_distributed_flow_block() -> None:
    with pytest.raises(x.FlowBlockException, match=r"not an orch_serv 0\.2 block"):
        FlowBlock(Block("d", service="s")).init_block(object())
