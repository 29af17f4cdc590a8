"""1.3: ``FlowBlock``, ``FlowBuilder``, ``SyncFlow``, ``AsyncFlow``."""

from __future__ import annotations

from typing import Any

import pytest

from orch_serv import exceptions
from orch_serv.exc import (
    FlowBlockException,
    FlowBuilderException,
    NotUniqueBlockInFlowError,
    WorkTypeMismatchException,
)
from orch_serv.orchestrator.block import AsyncBlock, SyncBlock
from orch_serv.orchestrator.flow import AsyncFlow, Flow, FlowBlock, FlowBuilder, SyncFlow
from tests.legacy02.models import Msg, msg

LOG: list[Any] = []


@pytest.fixture(autouse=True)
def _clear_log() -> None:
    LOG.clear()


class A(SyncBlock):
    name_block = "a"

    def process(self, message: Msg) -> Msg:
        LOG.append(1)
        return message


class B(SyncBlock):
    name_block = "b"

    def process(self, message: Msg) -> Msg:
        LOG.append(2)
        return message


class C(SyncBlock):
    name_block = "c"

    def process(self, message: Msg) -> None:
        LOG.append(3)


class D(AsyncBlock):
    name_block = "fourth async block"

    async def process(self, message: Msg) -> Msg:
        LOG.append(4)
        return message


class Hooked(SyncFlow):
    name_flow = "hooked"
    steps_flow = FlowBuilder(
        FlowBlock(A, pre_handler_function="pre_a", post_handler_function="post_a"),
        FlowBlock(B, pre_handler_function="pre_b", post_handler_function="post_b"),
    )

    def pre_a(self, message: Msg) -> Msg:
        LOG.append(-3)
        return message

    def post_a(self, message: Msg) -> None:
        LOG.append(-1)

    def pre_b(self, message: Msg) -> Msg:
        LOG.append(-1)
        return message

    def post_b(self, message: Msg) -> None:
        LOG.append(-3)


class Dup(SyncFlow):
    name_flow = "dup"
    steps_flow = FlowBuilder(FlowBlock(A), FlowBlock(A))
    is_contains_duplicat_blocks = True


# -- FlowBlock ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [object(), 1, "a", SyncFlow, int])
def test_flow_block_rejects_non_blocks(bad: Any) -> None:
    with pytest.raises(FlowBlockException) as info:
        FlowBlock(bad)
    assert info.value.message == (
        "Incorrect type block handler. The block must inherit from the class 'Block', "
        f"and not : {type(bad)}"
    )
    assert isinstance(info.value, exceptions.FlowBlockException)


@pytest.mark.parametrize("block", [A, A(), D, D()])
def test_flow_block_accepts_classes_and_instances(block: Any) -> None:
    step = FlowBlock(block)
    assert isinstance(step, FlowBlock)
    assert step.obj_block is block


def test_init_block_needs_a_flow() -> None:
    with pytest.raises(TypeError) as info:
        FlowBlock(A).init_block(object())
    assert str(info.value) == "Value `instance_main` must be a Flow"


def test_init_block_class_gets_hooks_and_logger_and_builder_is_unchanged() -> None:
    flow = Hooked()
    step = Hooked.steps_flow.steps[0]
    block = step.init_block(flow)
    assert isinstance(block, A)
    assert block.pre_handler_function == flow.pre_a
    assert block.logger is flow.logger
    assert step.obj_block is A  # 0.2 replaced it with the instance


def test_init_block_instance_is_copied() -> None:
    original = A()
    step = FlowBlock(original, post_handler_function="post_a")
    block = step.init_block(Hooked())
    assert block is not original
    assert original.post_handler_function is None


def test_unknown_string_hook_means_no_hook() -> None:
    class Unknown(SyncFlow):
        name_flow = "unknown"
        steps_flow = FlowBuilder(FlowBlock(A, pre_handler_function="no_such_method"))

    assert Unknown().flow_chain.pre_handler_function is None


def test_callable_hooks_on_flow_blocks() -> None:
    def pre(message: Msg) -> Msg:
        LOG.append("pre")
        return message

    class WithCallable(SyncFlow):
        name_flow = "callable"
        steps_flow = FlowBuilder(FlowBlock(A, pre))

    WithCallable().to_go_with_the_flow(msg())
    assert LOG == ["pre", 1]


# -- FlowBuilder -------------------------------------------------------------------------------
def test_flow_builder_rejects_non_flow_blocks() -> None:
    with pytest.raises(FlowBuilderException) as info:
        FlowBuilder(FlowBlock(A), A)  # type: ignore[arg-type]
    assert info.value.message == "Incorrect type in builder arguments on index 1"


def test_build_flow_links_and_returns_the_head() -> None:
    head = FlowBuilder(FlowBlock(A), FlowBlock(B)).build_flow(Hooked())
    assert isinstance(head, A) and isinstance(head.get_next(), B)


# -- Flow --------------------------------------------------------------------------------------
def test_flow_without_name_or_steps() -> None:
    class NoName(SyncFlow):
        steps_flow = FlowBuilder(FlowBlock(A))

    class NoSteps(SyncFlow):
        name_flow = "no steps"

    for flow in (NoName, NoSteps):
        with pytest.raises(NotImplementedError):
            flow()


def test_steps_flow_of_wrong_type() -> None:
    class Wrong(SyncFlow):
        name_flow = "wrong"
        steps_flow = [FlowBlock(A)]  # type: ignore[assignment]  # noqa: RUF012

    with pytest.raises(TypeError) as info:
        Wrong()
    assert str(info.value) == (
        "Incorrect type 'steps_flow' - it must be 'FlowBuilder', and not <class 'list'>"
    )


def test_mixing_sync_and_async_blocks() -> None:
    class Mixed(SyncFlow):
        name_flow = "mixed"
        steps_flow = FlowBuilder(FlowBlock(A), FlowBlock(D))

    class MixedAsync(AsyncFlow):
        name_flow = "mixed async"
        steps_flow = FlowBuilder(FlowBlock(D), FlowBlock(A))

    with pytest.raises(WorkTypeMismatchException) as info:
        Mixed()
    assert info.value.message == (
        "In blocks use incorrect mode class.For SyncFlow use SyncBlock. Different types of "
        "work (sync and async or vice versa)"
    )
    with pytest.raises(WorkTypeMismatchException):
        MixedAsync()


def test_duplicate_blocks_rejected() -> None:
    class Twice(SyncFlow):
        name_flow = "twice"
        steps_flow = FlowBuilder(FlowBlock(A), FlowBlock(B), FlowBlock(A))

    with pytest.raises(NotUniqueBlockInFlowError) as info:
        Twice()
    assert info.value.message == (
        "Not unique block a in flow twice.Check your flow or set flow "
        "`variable is_contains_duplicat_blocks` as True"
    )


def test_duplicate_blocks_allowed_and_renamed_on_every_instantiation() -> None:
    # 0.2 gave a_0_0 -> a_1_1 the second time (the shared builder was mutated): fixed
    assert Dup().get_steps() == "a_0 -> a_1 -> end"
    assert Dup().get_steps() == "a_0 -> a_1 -> end"


def test_handling_sequences_one_block_per_call() -> None:
    flow = Hooked()
    m = msg()
    flow.to_go_with_the_flow(m)
    assert LOG == [-3, 1, -1]
    LOG.clear()
    flow.to_go_with_the_flow(m)
    assert LOG == [-1, 2, -3]


def test_nullable_flag_in_a_flow() -> None:
    def post(message: Msg) -> None:
        LOG.append("post")

    class Quiet(C):
        is_execute_after_nullable_process_msg = False

    class Loud(SyncFlow):
        name_flow = "loud"
        steps_flow = FlowBuilder(FlowBlock(C, post_handler_function=post))

    class Silent(SyncFlow):
        name_flow = "silent"
        steps_flow = FlowBuilder(FlowBlock(Quiet, post_handler_function=post))

    Loud().to_go_with_the_flow(msg())
    assert LOG == [3, "post"]
    LOG.clear()
    Silent().to_go_with_the_flow(msg())
    assert LOG == [3]


async def test_async_flow() -> None:
    class Fourth(AsyncFlow):
        name_flow = "fourth"
        steps_flow = FlowBuilder(FlowBlock(D))

    flow = Fourth()
    assert flow.get_steps() == "fourth async block -> end"
    await flow.to_go_with_the_flow(msg())
    assert LOG == [4]


def test_mode_classes() -> None:
    assert SyncFlow._base_class_for_blocks is SyncBlock
    assert AsyncFlow._base_class_for_blocks is AsyncBlock
    assert issubclass(SyncFlow, Flow) and issubclass(AsyncFlow, Flow)


def test_flow_logger() -> None:
    import logging

    logger = logging.getLogger("flows")
    flow = Hooked(logger=logger)
    assert flow.logger is logger and flow.flow_chain.logger is logger
