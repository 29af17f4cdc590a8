"""FlowRegistry: what an orchestrator is given, its defaults and how starts are resolved."""

import types
from collections.abc import Callable
from typing import Any

import pytest

from orch_serv import exceptions as exc
from orch_serv.flow import Block, Definition, Flow, FlowBlock, FlowBuilder, FlowRegistry


class A(Block):
    name_block = "a"
    service = "svc"


class B(Block):
    name_block = "b"
    service = "svc"


class Ingest(Flow):
    name_flow = "ingest"
    steps_flow = FlowBuilder(FlowBlock(A), FlowBlock(B))


class Export(Flow):
    name_flow = "export"
    steps_flow = FlowBuilder(FlowBlock(B))


class Clean(Flow):
    name_flow = "clean"
    steps_flow = FlowBuilder(FlowBlock(A))


class IngestAgain(Flow):
    name_flow = "ingest"
    steps_flow = FlowBuilder(FlowBlock(B))


MODULE_SOURCE = '''
from orch_serv.flow import Block, Flow, FlowBlock, FlowBuilder


class Step(Block):
    name_block = "step"
    service = "svc"


class Helper:
    """Not a flow: must be ignored."""


class AbstractBase(Flow):
    """No name_flow: must be ignored."""

    def hook(self, message):
        return message


class Zeta(AbstractBase):
    name_flow = "zeta"
    steps_flow = FlowBuilder(FlowBlock(Step, pre_handler_function="hook"))


class Alpha(Flow):
    name_flow = "alpha"
    steps_flow = FlowBuilder(FlowBlock(Step))
'''


def _module(name: str = "my_flows") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(MODULE_SOURCE, f"<{name}>", "exec"), module.__dict__)
    return module


def test_flows_as_list_of_classes_and_instances() -> None:
    registry = FlowRegistry([Ingest, Export()])
    assert registry.get_list_flows() == ["ingest", "export"]
    assert registry.get_list_blocks() == []
    definition = registry.resolve(flow="ingest")
    assert isinstance(definition, Definition)
    assert definition.spec == Ingest.spec()
    assert [s.spec.name for s in definition.steps] == ["a", "b"]


def test_get_list_flows_keeps_registration_order() -> None:
    assert FlowRegistry([Export, Clean, Ingest]).get_list_flows() == ["export", "clean", "ingest"]
    assert FlowRegistry((Ingest, Clean)).get_list_flows() == ["ingest", "clean"]


def test_flows_as_module() -> None:
    module = _module()
    registry = FlowRegistry(module)
    assert registry.get_list_flows() == ["alpha", "zeta"]  # alphabetical, as orch_serv 0.2
    assert registry.get_list_blocks() == []
    zeta = registry.resolve(flow="zeta")
    hook: Callable[[Any], Any] | None = zeta.steps[0].pre
    assert hook is not None
    assert hook("m") == "m"


def test_blocks_as_module() -> None:
    registry = FlowRegistry(blocks=_module())
    assert registry.get_list_blocks() == ["step"]
    assert registry.get_list_flows() == []


def test_blocks_as_list() -> None:
    registry = FlowRegistry(blocks=[A, Block("solo", service="svc")])
    assert registry.get_list_blocks() == ["a", "solo"]
    definition = registry.resolve(target="solo")
    assert definition.spec.kind == "block"
    assert definition.spec.name == "solo"


@pytest.mark.parametrize("bad", [5, 3.2, "ingest", b"ingest", object()])
def test_non_iterable_flows(bad: Any) -> None:
    with pytest.raises(exc.WrongTypeException) as info:
        FlowRegistry(bad)
    assert isinstance(info.value, TypeError)
    assert "flows" in info.value.message


def test_non_iterable_blocks() -> None:
    with pytest.raises(exc.WrongTypeException) as info:
        FlowRegistry([Ingest], blocks=5)  # type: ignore[arg-type]
    assert "blocks" in info.value.message


@pytest.mark.parametrize("bad", [1, "x", A, object])
def test_list_item_not_a_flow(bad: Any) -> None:
    with pytest.raises(exc.WrongTypeException):
        FlowRegistry([Ingest, bad])


def test_duplicate_flow_names() -> None:
    with pytest.raises(exc.UniqueNameException) as info:
        FlowRegistry([Ingest, IngestAgain])
    assert "ingest" in info.value.message
    with pytest.raises(exc.UniqueNameException):
        FlowRegistry([Ingest, Ingest()])


def test_duplicate_block_names() -> None:
    with pytest.raises(exc.UniqueNameException) as info:
        FlowRegistry(blocks=[A, A()])
    assert "`a`" in info.value.message


@pytest.mark.parametrize("kwargs", [{}, {"flows": []}, {"flows": [], "blocks": ()}])
def test_nothing_given(kwargs: dict[str, Any]) -> None:
    with pytest.raises(exc.NoDateException):
        FlowRegistry(**kwargs)


def test_module_without_flows() -> None:
    empty = types.ModuleType("empty_flows")
    with pytest.raises(exc.NoDateException):
        FlowRegistry(empty)


def test_unknown_default_flow() -> None:
    with pytest.raises(exc.NotFoundDefaultError) as info:
        FlowRegistry([Ingest], default_flow="nope")
    assert "nope" in info.value.message
    assert "ingest" in info.value.message


def test_unknown_default_block() -> None:
    with pytest.raises(exc.NotFoundDefaultError) as info:
        FlowRegistry([Ingest], blocks=[A], default_block="nope")
    assert "nope" in info.value.message
    with pytest.raises(exc.NotFoundDefaultError):
        FlowRegistry([Ingest], default_block="a")  # blocks are not flows


def test_resolve_target_wins_over_flow() -> None:
    registry = FlowRegistry([Ingest], blocks=[A])
    definition = registry.resolve(flow="ingest", target="a")
    assert definition.spec.kind == "block"
    assert definition.spec.name == "a"


def test_resolve_flow() -> None:
    registry = FlowRegistry([Ingest, Export])
    assert registry.resolve(flow="export").spec.name == "export"
    assert registry.resolve("ingest").spec.name == "ingest"


def test_resolve_unknown_flow_falls_back_to_default() -> None:
    registry = FlowRegistry([Ingest, Export], default_flow="export")
    assert registry.resolve(flow="missing").spec.name == "export"
    assert registry.resolve(flow="ingest").spec.name == "ingest"


def test_resolve_unknown_target_falls_back_to_default_block() -> None:
    registry = FlowRegistry(blocks=[A, B], default_block="b")
    assert registry.resolve(target="missing").spec.name == "b"
    assert registry.resolve(target="a").spec.name == "a"


def test_resolve_unknown_without_default() -> None:
    registry = FlowRegistry([Ingest], blocks=[A])
    with pytest.raises(exc.FlowNotFound) as info:
        registry.resolve(flow="missing")
    assert "missing" in info.value.message
    with pytest.raises(exc.FlowNotFound):
        registry.resolve(target="missing")


def test_resolve_nothing_raises_even_with_defaults() -> None:
    registry = FlowRegistry([Ingest], blocks=[A], default_flow="ingest", default_block="a")
    with pytest.raises(exc.FlowNotFound):
        registry.resolve()


def test_version_lookup() -> None:
    registry = FlowRegistry([Ingest, Export], blocks=[A])
    spec = Ingest.spec()
    found = registry.version("flow", "ingest", spec.version)
    assert found is registry.resolve(flow="ingest")
    block = registry.resolve(target="a")
    assert registry.version("block", "a", block.spec.version) is block
    assert registry.version("flow", "ingest", "0000deadbeef") is None
    assert registry.version("block", "ingest", spec.version) is None
    assert registry.version("flow", "missing", spec.version) is None


def test_specs_lists_flows_then_blocks() -> None:
    registry = FlowRegistry([Ingest, Export], blocks=[A])
    assert [(s.kind, s.name) for s in registry.specs()] == [
        ("flow", "ingest"),
        ("flow", "export"),
        ("block", "a"),
    ]


def test_block_with_string_hook_rejected() -> None:
    with pytest.raises(exc.FlowBlockException):
        FlowRegistry(blocks=[Block("h", service="svc", pre_handler_function="method")])
