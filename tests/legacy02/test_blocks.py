"""1.2: ``SyncBlock`` / ``AsyncBlock`` (abstract bases, hooks, chaining, dispatch by source)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pytest

from orch_serv.exc import FlowException, OrchServError
from orch_serv.orchestrator.block import AsyncBaseBlock, AsyncBlock, SyncBaseBlock, SyncBlock
from tests.legacy02.models import Msg, msg

LOG: list[Any] = []


@pytest.fixture(autouse=True)
def _clear_log() -> None:
    LOG.clear()


class First(SyncBlock):
    name_block = "first block"

    def process(self, message: Msg) -> Msg:
        LOG.append(("process", self.name_block, message.get_source()))
        return message


class Second(SyncBlock):
    name_block = "second block"

    def process(self, message: Msg) -> Msg:
        LOG.append(("process", self.name_block, message.get_source()))
        return message


class Nothing(SyncBlock):
    name_block = "nothing"

    def process(self, message: Msg) -> None:
        message.body.value += 100
        LOG.append(("process", self.name_block, message.get_source()))


class AFirst(AsyncBlock):
    name_block = "first block"

    async def process(self, message: Msg) -> Msg:
        LOG.append(("process", self.name_block, message.get_source()))
        return message


class ASecond(AsyncBlock):
    name_block = "second block"

    async def process(self, message: Msg) -> Msg:
        LOG.append(("process", self.name_block, message.get_source()))
        return message


class NeedsArgs(SyncBlock):
    name_block = "needs args"

    def __init__(self, required: int) -> None:
        super().__init__()

    def process(self, message: Msg) -> Msg:
        return message


class Exploding(SyncBlock):
    name_block = "exploding"

    def __init__(self) -> None:
        raise OrchServError("constructor failed")

    def process(self, message: Msg) -> Msg:
        return message


def pre(message: Msg) -> Msg:
    LOG.append("pre")
    return message


def post(message: Msg) -> None:
    LOG.append(("post", message.body.value))


def stop(message: Msg) -> None:
    LOG.append("stop")


# -- abstract bases ----------------------------------------------------------------------------
@pytest.mark.parametrize("base", [SyncBaseBlock, AsyncBaseBlock, SyncBlock, AsyncBlock])
def test_abstract_bases_cannot_be_instantiated(base: type) -> None:
    with pytest.raises(TypeError):
        base()


def test_block_without_process_cannot_be_instantiated() -> None:
    class NoProcess(SyncBlock):
        name_block = "x"

    with pytest.raises(TypeError):
        NoProcess()  # type: ignore[abstract]


@pytest.mark.parametrize("prop", ["name_block", "pre_handler_function", "post_handler_function"])
def test_base_properties_raise_not_implemented(prop: str) -> None:
    class Bare(SyncBaseBlock):
        def set_next(self, handler: Any) -> Any:
            return handler

        def get_next(self) -> Any:
            return None

        def get_list_flow(self) -> str:
            return ""

        def handle(self, message: Any) -> Any:
            return message

        def process(self, message: Any) -> Any:
            return message

    with pytest.raises(NotImplementedError):
        getattr(Bare(), prop)


def test_block_without_name_raises_not_implemented() -> None:
    class Anonymous(SyncBlock):
        def process(self, message: Msg) -> Msg:
            return message

    with pytest.raises(NotImplementedError):
        _ = Anonymous().name_block


def test_defaults() -> None:
    block = First()
    assert block.pre_handler_function is None and block.post_handler_function is None
    assert block.is_execute_after_nullable_process_msg is True
    assert isinstance(block.logger, logging.Logger)
    custom = logging.getLogger("custom")
    assert First(logger=custom).logger is custom


def test_direct_process() -> None:
    m = msg()
    assert First().process(m) is m
    assert LOG == [("process", "first block", None)]


# -- hook setters ------------------------------------------------------------------------------
class HookHolder:
    def method(self, message: Msg) -> Msg:
        return message


@pytest.mark.parametrize("hook", [pre, HookHolder().method, lambda m: m])
def test_hook_setters_accept_functions_and_methods(hook: Any) -> None:
    block = First(pre_handler_function=hook, post_handler_function=hook)
    assert block.pre_handler_function is hook and block.post_handler_function is hook


@pytest.mark.parametrize("kind", ["pre_handler_function", "post_handler_function"])
@pytest.mark.parametrize("bad", [1, "sad", len, functools.partial(pre), HookHolder()])
def test_hook_setters_reject_other_types(kind: str, bad: Any) -> None:
    with pytest.raises(TypeError) as info:
        First(**{kind: bad})
    assert str(info.value) == f"Incorrect type {kind}, the attribute must be a function or None"


@pytest.mark.parametrize("empty", [None, ""])
def test_hook_setter_clears_with_a_falsy_value(empty: Any) -> None:
    # 0.2 ignored a falsy value, so a hook could never be removed (fixed)
    block = First(pre_handler_function=pre, post_handler_function=post)
    block.pre_handler_function = empty
    block.post_handler_function = empty
    assert block.pre_handler_function is None and block.post_handler_function is None


def test_async_block_accepts_coroutine_functions() -> None:
    async def hook(message: Msg) -> Msg:
        return message

    block = AFirst(pre_handler_function=hook)
    assert block.pre_handler_function is hook


# -- chaining ----------------------------------------------------------------------------------
def test_set_next_instantiates_a_class_and_returns_it() -> None:
    first = First()
    second = first.set_next(Second)
    assert isinstance(second, Second)
    assert first.get_next() is second
    assert second.get_next() is None
    third = Second()
    assert second.set_next(third) is third


@pytest.mark.parametrize("bad", [AFirst, AFirst(), object, 1, "x"])
def test_set_next_rejects_other_modes_and_foreign_objects(bad: Any) -> None:
    with pytest.raises(TypeError) as info:
        First().set_next(bad)
    assert str(info.value) == "Incorrect type for next handler"


def test_async_set_next_rejects_sync_blocks() -> None:
    with pytest.raises(TypeError, match="Incorrect type for next handler"):
        AFirst().set_next(First)


def test_set_next_class_needing_arguments_raises_type_error() -> None:
    with pytest.raises(TypeError):
        First().set_next(NeedsArgs)


def test_set_next_constructor_error_propagates() -> None:
    with pytest.raises(OrchServError, match="constructor failed"):
        First().set_next(Exploding)


def test_get_list_flow() -> None:
    first = First()
    first.set_next(Second)
    assert first.get_list_flow() == "first block -> second block -> end"
    assert Second().get_list_flow() == "second block -> end"


# -- handle ------------------------------------------------------------------------------------
def _chain(**hooks: Any) -> First:
    first = First(**hooks)
    first.set_next(Second(**hooks))
    return first


def test_handle_without_source_runs_this_block_only() -> None:
    m = msg()
    _chain().handle(m)
    assert LOG == [("process", "first block", "first block")]  # source set before process
    assert m.get_source() == "first block"


def test_handle_with_own_name_as_source_runs_the_next_block() -> None:
    m = msg(source="first block")
    _chain().handle(m)
    assert LOG == [("process", "second block", "second block")]


def test_handle_searches_the_chain_for_the_source() -> None:
    first = First()
    first.set_next(Second).set_next(Nothing)
    first.handle(msg(source="second block"))
    assert LOG == [("process", "nothing", "nothing")]


def test_handle_unknown_source_raises_flow_exception() -> None:
    with pytest.raises(FlowException) as info:
        _chain().handle(msg(source="elsewhere"))
    assert info.value.message.startswith(
        "The flow chain ended without finding a single handler: Not found block for source: "
    )
    assert LOG == []


def test_handle_source_is_the_last_block() -> None:
    # 0.2 failed with AttributeError ('NoneType' has no attribute ...): now a FlowException
    with pytest.raises(FlowException, match="last block of the chain"):
        _chain().handle(msg(source="second block"))


def test_pre_and_post_hooks_around_process() -> None:
    _chain(pre_handler_function=pre, post_handler_function=post).handle(msg(7))
    assert LOG == ["pre", ("process", "first block", "first block"), ("post", 7)]


def test_pre_hook_falsy_result_stops_silently() -> None:
    m = msg()
    _chain(pre_handler_function=stop, post_handler_function=post).handle(m)
    assert LOG == ["stop"]
    assert m.get_source() is None


def test_pre_hook_result_is_what_process_receives() -> None:
    def replace(message: Msg) -> Msg:
        return msg(41)

    class Check(SyncBlock):
        name_block = "check"

        def process(self, message: Msg) -> Msg:
            LOG.append(message.body.value)
            return message

    Check(pre_handler_function=replace).handle(msg(1))
    assert LOG == [41]


def test_post_hook_gets_a_copy_of_the_input_when_process_returns_nothing() -> None:
    Nothing(post_handler_function=post).handle(msg(5))
    assert LOG == [("process", "nothing", "nothing"), ("post", 5)]  # not 105: the copy


def test_post_hook_skipped_when_flag_false_and_process_returns_nothing() -> None:
    class Quiet(Nothing):
        is_execute_after_nullable_process_msg = False

    Quiet(post_handler_function=post).handle(msg(5))
    assert LOG == [("process", "nothing", "nothing")]


def test_nullable_flag_is_read_from_the_processing_block() -> None:
    # 0.2 read the flag of the block whose handle() was called (fixed)
    class Quiet(Nothing):
        is_execute_after_nullable_process_msg = False

    first = First()
    first.set_next(Quiet(post_handler_function=post))
    first.handle(msg(5, source="first block"))
    assert LOG == [("process", "nothing", "nothing")]


async def test_async_handle_sequences() -> None:
    async def apre(message: Msg) -> Msg:
        LOG.append("pre")
        return message

    first = AFirst(pre_handler_function=apre, post_handler_function=post)
    first.set_next(ASecond(pre_handler_function=apre, post_handler_function=post))
    m = msg(3)
    await first.handle(m)
    await first.handle(m)
    assert LOG == [
        "pre",
        ("process", "first block", "first block"),
        ("post", 3),
        "pre",
        ("process", "second block", "second block"),
        ("post", 3),
    ]


async def test_async_pre_hook_falsy_stops() -> None:
    await AFirst(pre_handler_function=stop).handle(msg())
    assert LOG == ["stop"]


async def test_async_unknown_source() -> None:
    with pytest.raises(FlowException, match="Not found block for source"):
        await AFirst().handle(msg(source="nowhere"))
