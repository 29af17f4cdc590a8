"""1.4: ``SyncOrchestrator`` / ``AsyncOrchestrator``."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from orch_serv.exc import (
    NoDateException,
    NotFoundDefaultError,
    UniqueNameException,
    WorkTypeMismatchException,
    WrongTypeException,
)
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
from tests.legacy02 import sample_flows
from tests.legacy02.models import Msg, msg

LOG: list[Any] = []


@pytest.fixture(autouse=True)
def _clear_log() -> None:
    LOG.clear()
    sample_flows.CALLS.clear()


class One(SyncBlock):
    name_block = "one"

    def process(self, message: Msg) -> Msg:
        LOG.append(("one", message.get_source()))
        return message


class Two(SyncBlock):
    name_block = "two"

    def process(self, message: Msg) -> Msg:
        LOG.append(("two", message.get_source()))
        return message


class Boom(SyncBlock):
    name_block = "boom"

    def process(self, message: Msg) -> Msg:
        raise RuntimeError("boom")


class Created(SyncBlock):
    name_block = "created"
    instances = 0

    def __init__(self, **kwargs: Any) -> None:
        type(self).instances += 1
        LOG.append(("logger", kwargs.get("logger")))
        super().__init__(**kwargs)

    def process(self, message: Msg) -> Msg:
        return message


class Main(SyncFlow):
    name_flow = "main"
    steps_flow = FlowBuilder(FlowBlock(One, pre_handler_function="pre"), FlowBlock(Two))

    def pre(self, message: Msg) -> Msg:
        LOG.append("pre")
        return message


class Other(SyncFlow):
    name_flow = "other"
    steps_flow = FlowBuilder(FlowBlock(Two))


class AOne(AsyncBlock):
    name_block = "aone"

    async def process(self, message: Msg) -> Msg:
        LOG.append(("aone", message.get_source()))
        return message


class AFlowOk(AsyncFlow):
    name_flow = "aflow"
    steps_flow = FlowBuilder(FlowBlock(AOne))


# -- construction ------------------------------------------------------------------------------
def test_no_data_at_all() -> None:
    with pytest.raises(NoDateException) as info:
        SyncOrchestrator()
    assert info.value.message == "There is no data for the orchestrator to work correctly"


@pytest.mark.parametrize(("kind", "kwargs"), [("flow", {"flows": []}), ("block", {"blocks": []})])
def test_empty_kind(kind: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(NoDateException) as info:
        SyncOrchestrator(**kwargs)
    assert info.value.message == f"No {kind}s for processing"


def test_everything_ignored_is_empty() -> None:
    with pytest.raises(NoDateException, match="No flows for processing"):
        SyncOrchestrator(flows=[Main], flows_to_ignore=["main"])
    with pytest.raises(NoDateException, match="No blocks for processing"):
        SyncOrchestrator(blocks=[One], blocks_to_ignore=["One"])


def test_ignore_by_class_name_or_identifier() -> None:
    by_class = SyncOrchestrator(flows=[Main, Other], flows_to_ignore=["Main"])
    by_name = SyncOrchestrator(flows=[Main, Other], flows_to_ignore=["main"])
    assert by_class.get_list_flows() == by_name.get_list_flows() == ["other"]


def test_lists_of_classes_and_instances_in_insertion_order() -> None:
    orch = SyncOrchestrator(flows=[Other, Main()], blocks=[Two, One()])
    assert orch.get_list_flows() == ["other", "main"]
    assert orch.get_list_blocks() == ["two", "one"]


def test_modules_in_alphabetical_order_ignoring_other_classes() -> None:
    orch = SyncOrchestrator(flows=sample_flows, blocks=sample_flows)
    assert orch.get_list_flows() == ["a flow", "z flow"]  # AFlow, ZFlow
    assert orch.get_list_blocks() == ["alpha", "zeta"]


def test_class_attributes() -> None:
    class FromAttributes(SyncOrchestrator):
        flows = [Main]  # noqa: RUF012 - 0.2 declares lists
        blocks = [One]  # noqa: RUF012

    orch = FromAttributes()
    assert orch.get_list_flows() == ["main"] and orch.get_list_blocks() == ["one"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"flows": [Main, Main]},
        {"flows": [Main, Main()]},
        {"blocks": [One, One()]},
    ],
)
def test_unique_names(kwargs: dict[str, Any]) -> None:
    kind = "flow" if "flows" in kwargs else "block"
    name = "main" if kind == "flow" else "one"
    with pytest.raises(UniqueNameException) as info:
        SyncOrchestrator(**kwargs)
    assert info.value.message == (
        f"The {kind} name `{name}` is not unique to this orchestrator_service"
    )


def test_unique_names_from_class_attribute() -> None:
    class Twice(SyncOrchestrator):
        flows = [Main, Main]  # noqa: RUF012 - 0.2 declares lists

    with pytest.raises(UniqueNameException):
        Twice()


@pytest.mark.parametrize("bad", [(Main,), {"main": Main}])
def test_other_containers(bad: Any) -> None:
    with pytest.raises(WrongTypeException) as info:
        SyncOrchestrator(flows=bad)
    assert info.value.message == (
        f"Invalid variable type `flow`. There flow should be a list and not `{type(bad)}`"
    )


def test_flows_and_blocks_swapped() -> None:
    with pytest.raises(TypeError, match="is not inheritor"):
        SyncOrchestrator(flows=[One])
    with pytest.raises(TypeError, match="is not inheritor"):
        SyncOrchestrator(blocks=[Main()])


def test_mode_mismatch() -> None:
    with pytest.raises(WorkTypeMismatchException) as info:
        SyncOrchestrator(flows=[AFlowOk])
    assert info.value.message == (
        "In flows use incorrect mode class.For SyncOrchestrator use SyncFlow. Different types "
        "of work (sync and async or vice versa)"
    )
    with pytest.raises(WorkTypeMismatchException, match="In targets"):
        AsyncOrchestrator(blocks=[One])
    with pytest.raises(WorkTypeMismatchException, match="For AsyncOrchestrator use AsyncFlow"):
        AsyncOrchestrator(flows=[Main])


def test_defaults_must_exist() -> None:
    with pytest.raises(NotFoundDefaultError) as info:
        SyncOrchestrator(flows=[Main], default_flow="test")
    assert info.value.message == "Not exist default value test for flows.Allowed values: ['main']"
    with pytest.raises(NotFoundDefaultError, match="for blocks"):
        SyncOrchestrator(flows=[Main], blocks=[One], default_block="test")


# -- handle ------------------------------------------------------------------------------------
def test_flow_success_returns_none_one_block_per_call() -> None:
    orch = SyncOrchestrator(flows=[Main])
    m = msg(flow="main")
    assert orch.handle(m) is None
    assert orch.handle(m) is None
    assert LOG == ["pre", ("one", "one"), ("two", "two")]


def test_force_return_returns_the_same_object() -> None:
    orch = SyncOrchestrator(flows=[Main])
    m = msg(flow="main")
    assert orch.handle(m, is_force_return=True) is m


def test_target_runs_process_only() -> None:
    orch = SyncOrchestrator(flows=[Main], blocks=[One])
    m = msg(flow="main", target="one")  # the target wins over the flow
    assert orch.handle(m) is None
    assert LOG == [("one", None)]  # no pre hook, no source set


def test_unknown_names_return_the_message() -> None:
    orch = SyncOrchestrator(flows=[Main], blocks=[One])
    for m in (msg(flow="nope"), msg(target="nope"), msg()):
        assert orch.handle(m) is m
    assert LOG == []


def test_source_not_in_the_chain_returns_the_message() -> None:
    orch = SyncOrchestrator(flows=[Main])
    m = msg(flow="main", source="elsewhere")
    assert orch.handle(m) is m
    assert LOG == []


def test_defaults_for_unknown_names() -> None:
    orch = SyncOrchestrator(
        flows=[Main, Other], blocks=[One, Two], default_flow="other", default_block="one"
    )
    assert orch.handle(msg(flow="nope")) is None
    assert orch.handle(msg(target="nope")) is None
    assert LOG == [("two", "two"), ("one", None)]


def test_no_flow_and_no_target_with_defaults_returns_the_message() -> None:
    orch = SyncOrchestrator(flows=[Main], default_flow="main")
    m = msg()
    assert orch.handle(m) is m
    assert LOG == []


@pytest.mark.parametrize("bad", [{"flow": "main"}, None, "main"])
def test_non_message_raises_type_error(bad: Any) -> None:
    with pytest.raises(TypeError):
        SyncOrchestrator(flows=[Main]).handle(bad)


def test_message_without_hooks_raises_not_implemented() -> None:
    from orch_serv.msg import BaseOrchServMsg
    from tests.legacy02.models import Body, Header

    plain = BaseOrchServMsg[Body, Header](body=Body())
    with pytest.raises(NotImplementedError):
        SyncOrchestrator(flows=[Main]).handle(plain)


def test_exception_in_processing_returns_the_message(caplog: pytest.LogCaptureFixture) -> None:
    orch = SyncOrchestrator(blocks=[Boom])
    m = msg(target="boom")
    with caplog.at_level(logging.WARNING):
        assert orch.handle(m) is m
    assert any(r.exc_info for r in caplog.records)


def test_lazy_instantiation_with_the_orchestrator_logger_cached() -> None:
    logger = logging.getLogger("orch")
    before = Created.instances
    orch = SyncOrchestrator(blocks=[Created], logger=logger)
    assert Created.instances == before
    orch.handle(msg(target="created"))
    orch.handle(msg(target="created"))
    assert Created.instances == before + 1
    assert ("logger", logger) in LOG


def test_orchestrators_do_not_share_instances() -> None:
    # 0.2 kept the instances in class-level dicts shared by every orchestrator (fixed)
    first = SyncOrchestrator(flows=[Main])
    second = SyncOrchestrator(flows=[Main])
    assert first.get_flow("main") is not second.get_flow("main")


async def test_async_orchestrator() -> None:
    orch = AsyncOrchestrator(flows=[AFlowOk], blocks=[AOne])
    m = msg(flow="aflow")
    assert await orch.handle(m) is None
    assert await orch.handle(msg(target="aone"), is_force_return=True) is not None
    assert await orch.handle(msg(flow="nope")) is not None
    assert LOG == [("aone", "aone"), ("aone", None)]


async def test_async_orchestrator_errors_return_the_message() -> None:
    class ABoom(AsyncBlock):
        name_block = "aboom"

        async def process(self, message: Msg) -> Msg:
            raise ValueError("x")

    m = msg(target="aboom")
    assert await AsyncOrchestrator(blocks=[ABoom]).handle(m) is m
