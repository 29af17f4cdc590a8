"""``Flow``, ``FlowBlock`` and ``FlowBuilder``: named chains of blocks.

::

    class Ingest(Flow):
        name_flow = "ingest"
        steps_flow = FlowBuilder(
            FlowBlock(Validate),
            FlowBlock(Transform, post_handler_function="keep_stats"),
            FlowBlock(Publish),
        )

        def keep_stats(self, message): ...

Definitions are checked when the class is created, so a mistake fails at import time with an
exception from :mod:`orch_serv.exceptions`. The same block may appear more than once: its
steps are then named ``<name>_<index>`` (0-based), as orch_serv's duplicate-block flows did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ValidationError

from orch_serv.exc import FlowBlockException as LegacyFlowBlockException
from orch_serv.exc import FlowBuilderException as LegacyFlowBuilderException
from orch_serv.exceptions import (
    BlockException,
    EmptyFlowError,
    FlowBlockException,
    FlowBuilderException,
    FlowException,
    FlowNotImplemented,
    NotUniqueBlockInFlowError,
)
from orch_serv.flow.block import (
    Block,
    as_block,
    check_hook,
    check_name,
    check_policy,
    check_timeouts,
)
from orch_serv.flow.hooks import Hook, HookSpec
from orch_serv.flow.policy import RetryPolicy, Timeouts
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.flow.waits import WaitBlock, WaitSpec


def _is_legacy_block(obj: object) -> bool:
    """An orch_serv 0.2 block (``SyncBlock``/``AsyncBlock``), class or instance."""
    from orch_serv.legacy02.blocks import AsyncBaseBlock, SyncBaseBlock

    modes = (SyncBaseBlock, AsyncBaseBlock)
    return isinstance(obj, modes) or (isinstance(obj, type) and issubclass(obj, modes))


class FlowBlock:
    """A block's place in a flow, with hooks that apply in this flow only.

    Given an orch_serv 0.2 block (``SyncBlock``/``AsyncBlock``), ``FlowBlock(...)`` is a
    :class:`orch_serv.legacy02.flows.LegacyFlowBlock`, for ``SyncFlow``/``AsyncFlow``."""

    #: True for the FlowBlock of a 0.2 block (which only a SyncFlow/AsyncFlow accepts).
    is_legacy02: ClassVar[bool] = False

    def __new__(cls, obj_block: Any = None, *args: Any, **kwargs: Any) -> FlowBlock:
        if cls is FlowBlock and _is_legacy_block(obj_block):
            from orch_serv.legacy02.flows import LegacyFlowBlock

            return super().__new__(LegacyFlowBlock)
        return super().__new__(cls)

    def __init__(
        self,
        obj_block: Any,
        pre_handler_function: HookSpec | Callable[..., Any] = None,
        post_handler_function: HookSpec | Callable[..., Any] = None,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        compensate: str | None = None,
    ) -> None:
        self.obj_block: Any = obj_block
        if not isinstance(obj_block, Block) and not (
            isinstance(obj_block, type) and issubclass(obj_block, Block)
        ):
            raise LegacyFlowBlockException(str(type(obj_block)))
        try:
            self.block = as_block(obj_block)
            self.pre_handler_function = check_hook("pre_handler_function", pre_handler_function)
            self.post_handler_function = check_hook("post_handler_function", post_handler_function)
            self.retry = check_policy(retry) or self.block.retry
            self.timeouts = check_timeouts(timeouts) or self.block.timeouts
            self.compensate = (
                check_name("compensate", compensate) if compensate else self.block.compensate
            )
        except BlockException as exc:
            raise FlowBlockException(exc.message) from exc

    def init_block(self, instance_main: Any, step_number: int = 0) -> Any:
        """orch_serv 0.2: the block instance for a ``SyncFlow``/``AsyncFlow`` (only for the
        FlowBlock of a 0.2 block; a distributed block has no instance to run)."""
        raise FlowBlockException(
            f"block {self.block.name_block!r} is not an orch_serv 0.2 block: it runs in a "
            "service, not in a SyncFlow/AsyncFlow"
        )


class FlowBuilder:
    """The ordered steps of a flow: ``FlowBuilder(FlowBlock(A), FlowBlock(B), ...)``."""

    def __init__(self, *steps: FlowBlock) -> None:
        for index, step in enumerate(steps):
            if not isinstance(step, FlowBlock):
                raise LegacyFlowBuilderException(f"on index {index}")
        self.steps: tuple[FlowBlock, ...] = steps

    def __len__(self) -> int:
        return len(self.steps)

    def build_flow(self, flow: Any) -> Any:
        """orch_serv 0.2: instantiate and link the blocks for a ``SyncFlow``/``AsyncFlow``
        instance and return the head of the chain (the builder is not changed)."""
        from orch_serv.legacy02.flows import build_chain

        return build_chain(self, flow)


@dataclass(frozen=True, slots=True)
class CompiledStep:
    """A step ready to run: its spec plus the resolved hooks."""

    spec: StepSpec
    pre: Hook | None
    post: Hook | None


def _hook_name(hook: HookSpec) -> str | None:
    if hook is None:
        return None
    if isinstance(hook, str):
        return hook
    module = getattr(hook, "__module__", "?")
    return f"{module}.{getattr(hook, '__qualname__', type(hook).__name__)}"


class Flow:
    """Base class of flow definitions; set ``name_flow`` and ``steps_flow`` on a subclass."""

    name_flow: ClassVar[str]
    steps_flow: ClassVar[FlowBuilder]
    #: Retry policy of steps that set none of their own.
    retry_policy: ClassVar[RetryPolicy | None] = None
    #: Timeouts of steps, where a block sets none of its own.
    timeouts: ClassVar[Timeouts | None] = None
    #: Seconds from creation after which a run ends TIMED_OUT.
    deadline: ClassVar[float | None] = None
    #: The status model its handlers' statuses are held to: a name, or a
    #: :class:`~orch_serv.statusmodel.StatusModel` (which the Orchestrator then publishes).
    status_model: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name_flow" in cls.__dict__ or "steps_flow" in cls.__dict__:
            cls.spec()  # validate at definition time

    @classmethod
    def _check_declared(cls) -> tuple[str, FlowBuilder]:
        name = getattr(cls, "name_flow", None)
        builder = getattr(cls, "steps_flow", None)
        if name is None:
            raise FlowNotImplemented(f"flow {cls.__name__} has no `name_flow`")
        if builder is None:
            raise FlowNotImplemented(f"flow {name!r} has no `steps_flow`")
        try:
            check_name("name_flow", name)
        except BlockException as exc:
            raise FlowBlockException(exc.message) from exc
        if not isinstance(builder, FlowBuilder):
            raise FlowBuilderException(
                f"Incorrect type 'steps_flow' of flow {name!r} - it must be 'FlowBuilder', "
                f"and not {type(builder).__name__}"
            )
        if not builder.steps:
            raise EmptyFlowError(f"flow {name!r} has no steps")
        for index, step in enumerate(builder.steps):
            if step.is_legacy02:
                raise FlowBlockException(
                    f"flow {name!r}: step {index} is an orch_serv 0.2 block; put it in a "
                    "SyncFlow/AsyncFlow (orch_serv.orchestrator), which runs distributed "
                    "through the 0.2 bridge (docs/migrating-from-0.2.md)"
                )
        return name, builder

    @classmethod
    def _step_names(cls, name: str, builder: FlowBuilder) -> list[str]:
        seen: dict[str, tuple[str, str, str]] = {}
        repeated: set[str] = set()
        for fb in builder.steps:
            block = fb.block
            known = seen.setdefault(block.name_block, block.identity())
            if known != block.identity():
                raise NotUniqueBlockInFlowError(
                    f"Not unique block {block.name_block!r} in flow {name!r}: two different "
                    "blocks share that name"
                )
            if len([f for f in builder.steps if f.block.name_block == block.name_block]) > 1:
                repeated.add(block.name_block)
        return [
            f"{fb.block.name_block}_{i}" if fb.block.name_block in repeated else fb.block.name_block
            for i, fb in enumerate(builder.steps)
        ]

    @classmethod
    def _resolve(cls, name: str, kind: str, hook: HookSpec) -> None:
        if isinstance(hook, str) and not callable(getattr(cls, hook, None)):
            raise FlowBlockException(
                f"flow {name!r}: {kind} {hook!r} is not a method of {cls.__name__}"
            )

    @classmethod
    def spec(cls) -> FlowSpec:
        """The flow's storable definition, with its version. Raises on a bad definition."""
        name, builder = cls._check_declared()
        return cls._flow_spec(name, builder, cls.deadline)

    @classmethod
    def _flow_spec(cls, name: str, builder: FlowBuilder, deadline: float | None) -> FlowSpec:
        """The spec of the chain ``builder`` named ``name`` (the flow's, or a branch's of one
        of its group steps) with this flow's policies."""
        from orch_serv.flow.groupflows import group_of  # it builds branches with this class

        names = cls._step_names(name, builder)
        steps = []
        for index, (fb, step_name) in enumerate(zip(builder.steps, names, strict=True)):
            pre = fb.pre_handler_function or fb.block.pre_handler_function
            post = fb.post_handler_function or fb.block.post_handler_function
            cls._resolve(name, "pre_handler_function", pre)
            cls._resolve(name, "post_handler_function", post)
            steps.append(
                StepSpec(
                    index=index,
                    name=step_name,
                    block=fb.block.name_block,
                    service=fb.block.service,
                    command=fb.block.command,
                    pre_hook=_hook_name(pre),
                    post_hook=_hook_name(post),
                    retry=fb.retry or cls.retry_policy,
                    timeouts=fb.timeouts.over(cls.timeouts) if fb.timeouts else cls.timeouts,
                    compensate=fb.compensate,
                    wait=wait_of(fb.block, fb.compensate),
                    group=group_of(cls, name, step_name, fb),
                )
            )
        try:
            return FlowSpec(
                kind="flow",
                name=name,
                steps=tuple(steps),
                deadline=deadline,
                status_model=getattr(cls.status_model, "name", cls.status_model),
            ).with_version()
        except ValidationError as exc:
            raise FlowException(f"flow {name!r}: {exc}") from exc

    def compile(self) -> tuple[CompiledStep, ...]:
        """The steps with hooks resolved (string hooks bound to this flow instance)."""
        _, builder = self._check_declared()
        return self.compile_chain(builder, self.spec())

    def compile_chain(self, builder: FlowBuilder, spec: FlowSpec) -> tuple[CompiledStep, ...]:
        """The steps of ``spec`` (built from ``builder``: the flow's, or a branch's) with
        hooks resolved."""
        compiled = []
        for fb, step in zip(builder.steps, spec.steps, strict=True):
            pre = fb.pre_handler_function or fb.block.pre_handler_function
            post = fb.post_handler_function or fb.block.post_handler_function
            compiled.append(CompiledStep(step, self._bind(pre), self._bind(post)))
        return tuple(compiled)

    def _bind(self, hook: HookSpec) -> Hook | None:
        if isinstance(hook, str):
            bound: Hook = getattr(self, hook)
            return bound
        return hook

    def get_steps(self) -> str:
        """The chain as text: ``"validate -> transform -> end"``."""
        return " -> ".join([s.name for s in self.spec().steps] + ["end"])


def wait_of(block: Block, compensate: str | None) -> WaitSpec | None:
    """What the step of ``block`` waits for (None: it runs a command); a wait has nothing
    to undo, so it declares no compensation."""
    if not isinstance(block, WaitBlock):
        return None
    if compensate:
        raise FlowBlockException(
            f"wait step {block.name_block!r} cannot declare a compensation (it changes nothing)"
        )
    return block.wait


def block_spec(block: Block) -> FlowSpec:
    """A single block run as a one-step flow (orch_serv's ``target``)."""
    from orch_serv.flow.groups import GroupBlock

    if isinstance(block, GroupBlock):
        raise FlowBlockException(
            f"group step {block.name_block!r} cannot run on its own: put it in a flow"
        )
    step = StepSpec(
        index=0,
        name=block.name_block,
        block=block.name_block,
        service=block.service,
        command=block.command,
        pre_hook=_hook_name(block.pre_handler_function),
        post_hook=_hook_name(block.post_handler_function),
        retry=block.retry,
        timeouts=block.timeouts,
        compensate=block.compensate,
        wait=wait_of(block, block.compensate),
    )
    return FlowSpec(kind="block", name=block.name_block, steps=(step,)).with_version()


def block_steps(block: Block) -> tuple[CompiledStep, ...]:
    """The compiled single step of a block run. String hooks are not allowed on bare blocks."""
    for kind, hook in (("pre", block.pre_handler_function), ("post", block.post_handler_function)):
        if isinstance(hook, str):
            raise FlowBlockException(
                f"block {block.name_block!r}: a {kind} hook given by name needs a flow; "
                "pass a callable when the block runs on its own"
            )
    spec = block_spec(block)
    pre = block.pre_handler_function
    post = block.post_handler_function
    return (CompiledStep(spec.steps[0], pre, post),)  # type: ignore[arg-type]
