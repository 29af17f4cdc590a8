"""A 0.2 program used by the bridge tests: hooks, a block returning nothing, a failing block
with a retry policy, a target."""

from __future__ import annotations

from typing import Any, ClassVar

from orch_serv.flow.policy import RetryPolicy
from orch_serv.orchestrator import (
    AsyncBlock,
    AsyncFlow,
    AsyncOrchestrator,
    FlowBlock,
    FlowBuilder,
    SyncBlock,
    SyncFlow,
    SyncOrchestrator,
)
from tests.legacy02.models import Msg

HOOKS: list[Any] = []


class Add(AsyncBlock):
    name_block = "add one"

    async def process(self, message: Msg) -> Msg:
        message.body.value += 1
        return message


class Silent(AsyncBlock):
    name_block = "silent"

    async def process(self, message: Msg) -> None:
        message.body.value += 100  # changed in place, nothing returned


class Quiet(Silent):
    name_block = "quiet"
    is_execute_after_nullable_process_msg = False


class Flaky(AsyncBlock):
    name_block = "flaky"
    retry = RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.01)
    attempts: ClassVar[int] = 0

    async def process(self, message: Msg) -> Msg:
        type(self).attempts += 1
        if type(self).attempts % 2:
            raise RuntimeError("first attempt fails")
        return message


class Main(AsyncFlow):
    name_flow = "main flow"
    steps_flow = FlowBuilder(
        FlowBlock(Add, pre_handler_function="pre", post_handler_function="post"),
        FlowBlock(Silent, post_handler_function="post"),
        FlowBlock(Quiet, post_handler_function="post"),
    )

    async def pre(self, message: Msg) -> Msg | None:
        HOOKS.append(("pre", message.body.value))
        return None if message.body.value < 0 else message

    def post(self, message: Msg) -> None:
        HOOKS.append(("post", message.get_source(), message.body.value))


class Retried(AsyncFlow):
    name_flow = "retried"
    steps_flow = FlowBuilder(FlowBlock(Flaky))


class Twice(AsyncFlow):
    name_flow = "twice"
    steps_flow = FlowBuilder(FlowBlock(Add), FlowBlock(Add))
    is_contains_duplicat_blocks = True


orchestrator = AsyncOrchestrator(flows=[Main, Retried, Twice], blocks=[Add], default_flow="twice")


class SyncAdd(SyncBlock):
    name_block = "sync add"

    def process(self, message: Msg) -> Msg:
        message.body.value += 10
        return message


class SyncMain(SyncFlow):
    name_flow = "sync main"
    steps_flow = FlowBuilder(FlowBlock(SyncAdd))


sync_orchestrator = SyncOrchestrator(flows=[SyncMain], blocks=[SyncAdd])
