"""Blocks, FlowBlock, FlowBuilder and Flow: definition-time checks, step names, versions."""

from types import MethodType
from typing import Any

import pytest

from orch_serv import exceptions as exc
from orch_serv.flow import Block, Flow, FlowBlock, FlowBuilder
from orch_serv.flow.flow import block_spec, block_steps
from orch_serv.flow.hooks import HookSpec


class A(Block):
    name_block = "a"
    service = "svc"


class B(Block):
    name_block = "b"
    service = "svc"
    command = "do_b"


def pre_hook(message: Any) -> Any:
    return message


def post_hook(message: Any) -> Any:
    return message


# -- Block ------------------------------------------------------------------------------------
def test_block_subclass() -> None:
    a = A()
    assert (a.name_block, a.service, a.command) == ("a", "svc", "a")
    assert B().command == "do_b"
    assert a.identity() == ("a", "svc", "a")
    assert a.pre_handler_function is None
    assert a.post_handler_function is None


def test_block_instance() -> None:
    blk = Block("resize", service="images", command="resize_v2", pre_handler_function=pre_hook)
    assert (blk.name_block, blk.service, blk.command) == ("resize", "images", "resize_v2")
    assert blk.pre_handler_function is pre_hook
    assert Block("resize", service="images").command == "resize"


def test_block_instance_arguments_override_class_attributes() -> None:
    blk = A("a2", service="other", command="c")
    assert blk.identity() == ("a2", "other", "c")


def test_block_hook_as_staticmethod_class_attribute() -> None:
    class WithHooks(Block):
        name_block = "w"
        service = "svc"
        pre_handler_function = staticmethod(pre_hook)
        # annotated: a plain function stored on the class is used as it is (never bound)
        post_handler_function: HookSpec = post_hook

    blk = WithHooks()
    assert blk.pre_handler_function is pre_hook
    assert blk.post_handler_function is post_hook


def test_block_hooks_are_inherited() -> None:
    class Parent(Block):
        name_block = "p"
        service = "svc"
        pre_handler_function: HookSpec = pre_hook

    class Child(Parent):
        name_block = "c"

    assert Child().service == "svc"
    assert Child().pre_handler_function is pre_hook


def test_block_hook_declared_as_method_is_callable_with_message() -> None:
    class WithMethodHook(Block):
        name_block = "m"
        service = "svc"

        def pre_handler_function(self, message: Any) -> Any:
            return message

    blk = WithMethodHook()
    hook = blk.pre_handler_function
    assert callable(hook)
    assert hook("msg") == "msg"


def test_block_without_service() -> None:
    class NoService(Block):
        name_block = "x"

    with pytest.raises(exc.BlockException) as info:
        NoService()
    assert isinstance(info.value, TypeError)
    assert "service" in info.value.message


def test_block_without_name() -> None:
    class NoName(Block):
        service = "svc"

    with pytest.raises(exc.BlockException) as info:
        NoName()
    assert isinstance(info.value, TypeError)
    assert "name_block" in info.value.message
    with pytest.raises(exc.BlockException):
        Block(service="svc")


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 129, "é", 5])
def test_bad_block_names_rejected(bad: Any) -> None:
    with pytest.raises(exc.BlockException):
        Block(bad, service="svc")


@pytest.mark.parametrize("field", ["service", "command"])
def test_bad_service_and_command_names_rejected(field: str) -> None:
    with pytest.raises(exc.BlockException) as info:
        names: dict[str, Any] = {"service": "svc", field: "bad name"}
        Block("ok", **names)
    assert field in info.value.message


@pytest.mark.parametrize("good", ["a", "a.b-c_D9", "x" * 128])
def test_good_block_names_accepted(good: str) -> None:
    assert Block(good, service=good).name_block == good


def test_block_hook_of_wrong_type() -> None:
    with pytest.raises(exc.BlockException) as info:
        Block("a", service="svc", pre_handler_function=42)  # type: ignore[arg-type]
    assert "pre_handler_function" in info.value.message
    with pytest.raises(exc.BlockException) as info:
        Block("a", service="svc", post_handler_function=42)  # type: ignore[arg-type]
    assert "post_handler_function" in info.value.message


# -- FlowBlock / FlowBuilder ------------------------------------------------------------------
def test_flow_block_accepts_class_and_instance() -> None:
    from_class = FlowBlock(A)
    assert isinstance(from_class.block, A)
    inst = Block("z", service="svc")
    assert FlowBlock(inst).block is inst


@pytest.mark.parametrize("bad", [object(), 1, "a", Flow, str])
def test_flow_block_with_non_block(bad: Any) -> None:
    with pytest.raises(exc.FlowBlockException) as info:
        FlowBlock(bad)
    assert isinstance(info.value, TypeError)
    assert "Block" in info.value.message


def test_flow_block_hook_of_wrong_type() -> None:
    with pytest.raises(exc.FlowBlockException):
        FlowBlock(A, pre_handler_function=1)  # type: ignore[arg-type]
    with pytest.raises(exc.FlowBlockException):
        FlowBlock(A, post_handler_function=1)  # type: ignore[arg-type]


def test_flow_builder_with_non_flow_block() -> None:
    with pytest.raises(exc.FlowBuilderException) as info:
        FlowBuilder(FlowBlock(A), FlowBlock(B), A)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert "on index 2" in info.value.message
    with pytest.raises(exc.FlowBuilderException) as info:
        FlowBuilder("x")  # type: ignore[arg-type]
    assert "on index 0" in info.value.message


def test_flow_builder_len() -> None:
    assert len(FlowBuilder(FlowBlock(A), FlowBlock(B))) == 2


# -- Flow -------------------------------------------------------------------------------------
class AB(Flow):
    name_flow = "ab"
    steps_flow = FlowBuilder(FlowBlock(A), FlowBlock(B))


def test_get_steps() -> None:
    assert AB().get_steps() == "a -> b -> end"


def test_spec() -> None:
    spec = AB.spec()
    assert spec.kind == "flow"
    assert spec.name == "ab"
    assert [(s.index, s.name, s.block, s.service, s.command) for s in spec.steps] == [
        (0, "a", "a", "svc", "a"),
        (1, "b", "b", "svc", "do_b"),
    ]
    assert spec.step(1) is spec.steps[1]
    assert spec.step(2) is None
    assert spec.step(-1) is None


def test_flow_without_name_or_steps_spec() -> None:
    class Abstract(Flow):
        pass

    with pytest.raises(exc.FlowNotImplemented) as info:
        Abstract.spec()
    assert isinstance(info.value, NotImplementedError)
    with pytest.raises(exc.FlowNotImplemented):
        Abstract().get_steps()
    with pytest.raises(exc.FlowNotImplemented):
        Flow.spec()


def test_flow_with_only_name_fails_at_definition() -> None:
    with pytest.raises(exc.FlowNotImplemented) as info:

        class OnlyName(Flow):
            name_flow = "only_name"

    assert isinstance(info.value, NotImplementedError)
    assert "steps_flow" in info.value.message


def test_flow_with_only_steps_fails_at_definition() -> None:
    with pytest.raises(exc.FlowNotImplemented) as info:

        class OnlySteps(Flow):
            steps_flow = FlowBuilder(FlowBlock(A))

    assert "name_flow" in info.value.message


def test_abstract_base_flow_with_helpers_is_allowed() -> None:
    class Base(Flow):
        def shared_hook(self, message: Any) -> Any:
            return message

    class Concrete(Base):
        name_flow = "concrete"
        steps_flow = FlowBuilder(FlowBlock(A, pre_handler_function="shared_hook"))

    step = Concrete().compile()[0]
    assert isinstance(step.pre, MethodType)
    assert step.pre.__func__ is Base.shared_hook


def test_empty_flow_builder() -> None:
    with pytest.raises(exc.EmptyFlowError):

        class Empty(Flow):
            name_flow = "empty"
            steps_flow = FlowBuilder()


@pytest.mark.parametrize("bad", [[FlowBlock(A)], FlowBlock(A), "a", None.__class__])
def test_steps_flow_of_wrong_type(bad: Any) -> None:
    with pytest.raises(exc.FlowBuilderException) as info:

        class Wrong(Flow):
            name_flow = "wrong"
            steps_flow = bad

    assert isinstance(info.value, TypeError)
    assert "FlowBuilder" in info.value.message


def test_bad_flow_name() -> None:
    with pytest.raises(exc.OrchServError):

        class BadName(Flow):
            name_flow = "bad name"
            steps_flow = FlowBuilder(FlowBlock(A))


def test_different_blocks_sharing_a_name() -> None:
    with pytest.raises(exc.NotUniqueBlockInFlowError) as info:

        class Clash(Flow):
            name_flow = "clash"
            steps_flow = FlowBuilder(
                FlowBlock(Block("x", service="s1")), FlowBlock(Block("x", service="s2"))
            )

    assert "'x'" in info.value.message
    assert "'clash'" in info.value.message


def test_same_block_twice_is_named_by_index_idempotently() -> None:
    class Twice(Flow):
        name_flow = "twice"
        steps_flow = FlowBuilder(FlowBlock(A), FlowBlock(B), FlowBlock(A), FlowBlock(A()))

    expected = ["a_0", "b", "a_2", "a_3"]
    assert [s.name for s in Twice.spec().steps] == expected
    assert [s.name for s in Twice.spec().steps] == expected
    first, second = Twice(), Twice()
    assert [c.spec.name for c in first.compile()] == expected
    assert [c.spec.name for c in second.compile()] == expected
    assert first.get_steps() == "a_0 -> b -> a_2 -> a_3 -> end"
    assert second.get_steps() == first.get_steps()
    assert [s.block for s in Twice.spec().steps] == ["a", "b", "a", "a"]
    # The builder's blocks keep their own name: nothing is mutated.
    assert [fb.block.name_block for fb in Twice.steps_flow.steps] == ["a", "b", "a", "a"]
    assert Twice.spec().version == Twice.spec().version


def test_unknown_string_hook() -> None:
    with pytest.raises(exc.FlowBlockException) as info:

        class BadHook(Flow):
            name_flow = "bad_hook"
            steps_flow = FlowBuilder(FlowBlock(A, post_handler_function="no_such_method"))

    assert "no_such_method" in info.value.message


def test_string_hook_naming_a_non_callable_attribute() -> None:
    with pytest.raises(exc.FlowBlockException):

        class AttrHook(Flow):
            name_flow = "attr_hook"
            steps_flow = FlowBuilder(FlowBlock(A, pre_handler_function="name_flow"))


def test_unknown_string_hook_on_block_used_in_flow() -> None:
    with pytest.raises(exc.FlowBlockException):

        class BadBlockHook(Flow):
            name_flow = "bad_block_hook"
            steps_flow = FlowBuilder(
                FlowBlock(Block("h", service="s", pre_handler_function="missing"))
            )


def test_string_hook_resolved_to_bound_method() -> None:
    class Hooked(Flow):
        name_flow = "hooked"
        steps_flow = FlowBuilder(
            FlowBlock(A, pre_handler_function="before", post_handler_function="after"),
            FlowBlock(B, post_handler_function=post_hook),
        )

        def before(self, message: Any) -> Any:
            return ("before", self, message)

        def after(self, message: Any) -> Any:
            return message

    flow = Hooked()
    first, second = flow.compile()
    assert isinstance(first.pre, MethodType) and isinstance(first.post, MethodType)
    assert first.pre.__self__ is flow
    assert first.pre.__func__ is Hooked.before
    assert first.pre("m") == ("before", flow, "m")
    assert first.post.__func__ is Hooked.after
    assert second.pre is None
    assert second.post is post_hook
    assert first.spec.pre_hook == "before"
    assert second.spec.post_hook is not None and second.spec.post_hook.endswith("post_hook")


def test_flow_block_hook_overrides_block_hook() -> None:
    blk = Block("h", service="s", pre_handler_function=pre_hook)

    class Override(Flow):
        name_flow = "override"
        steps_flow = FlowBuilder(FlowBlock(blk), FlowBlock(blk, pre_handler_function=post_hook))

    first, second = Override().compile()
    assert first.pre is pre_hook
    assert second.pre is post_hook


def _flow(command: str, name: str = "versioned") -> type[Flow]:
    class Versioned(Flow):
        name_flow = name
        steps_flow = FlowBuilder(
            FlowBlock(A), FlowBlock(Block("v", service="svc", command=command))
        )

    return Versioned


def test_version_stable_and_sensitive() -> None:
    v1 = _flow("cmd").spec().version
    assert v1
    assert _flow("cmd").spec().version == v1
    assert _flow("other_cmd").spec().version != v1
    assert _flow("cmd", name="renamed").spec().version != v1


def test_version_changes_with_hook_and_order() -> None:
    class Plain(Flow):
        name_flow = "same"
        steps_flow = FlowBuilder(FlowBlock(A), FlowBlock(B))

    class Reordered(Flow):
        name_flow = "same"
        steps_flow = FlowBuilder(FlowBlock(B), FlowBlock(A))

    class WithHook(Flow):
        name_flow = "same"
        steps_flow = FlowBuilder(FlowBlock(A, pre_handler_function=pre_hook), FlowBlock(B))

    versions = {Plain.spec().version, Reordered.spec().version, WithHook.spec().version}
    assert len(versions) == 3


def test_block_spec_and_steps() -> None:
    blk = Block("solo", service="svc", post_handler_function=post_hook)
    spec = block_spec(blk)
    assert spec.kind == "block"
    assert spec.name == "solo"
    assert len(spec.steps) == 1
    assert spec.version == block_spec(blk).version
    (step,) = block_steps(blk)
    assert step.post is post_hook
    assert step.pre is None


def test_block_steps_reject_string_hooks() -> None:
    with pytest.raises(exc.FlowBlockException):
        block_steps(Block("solo", service="svc", pre_handler_function="method"))


@pytest.mark.parametrize(
    "error",
    [
        exc.BlockException,
        exc.FlowBlockException,
        exc.FlowBuilderException,
        exc.FlowNotImplemented,
        exc.EmptyFlowError,
        exc.NotUniqueBlockInFlowError,
        exc.FlowNotFound,
    ],
)
def test_errors_are_orch_serv_errors_with_message(error: type[exc.OrchServError]) -> None:
    assert issubclass(error, exc.OrchServError)
    assert issubclass(error, exc.OrchestratorException)
    err = error("some text")
    assert err.message == "some text"
    assert str(err) == "some text"


def test_raised_errors_carry_message() -> None:
    with pytest.raises(exc.OrchServError) as info:
        FlowBuilder(1)  # type: ignore[arg-type]
    assert info.value.message == str(info.value)
    assert info.value.message
