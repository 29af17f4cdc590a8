"""orch_serv 0.2's flows: ``SyncFlow`` and ``AsyncFlow`` (chains of 0.2 blocks, in process),
and ``LegacyFlowBlock``, what :class:`orch_serv.flow.FlowBlock` becomes when it is given a 0.2
block.

Fixed against 0.2: instantiating a flow never mutates its ``steps_flow`` (a class attribute
shared by every instance), so a second instance of a flow with duplicate blocks names them
``a_0 -> a_1`` again instead of ``a_0_0 -> a_1_1``.
"""

from __future__ import annotations

import copy
import itertools
import logging
from typing import Any, ClassVar

from orch_serv.exc import NotUniqueBlockInFlowError, WorkTypeMismatchException
from orch_serv.exceptions import EmptyFlowError
from orch_serv.flow.flow import FlowBlock, FlowBuilder
from orch_serv.flow.policy import RetryPolicy, Timeouts
from orch_serv.legacy02.blocks import AsyncBlock, SyncBlock
from orch_serv.legacy02.logs import DEFAULT_LOGGER


class LegacyFlowBlock(FlowBlock):
    """A 0.2 block's place in a flow. Hooks may be callables or names of methods of the flow
    (an unknown name means no hook, as in 0.2)."""

    is_legacy02 = True

    def __init__(
        self,
        obj_block: Any,
        pre_handler_function: Any = None,
        post_handler_function: Any = None,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        compensate: str | None = None,
    ) -> None:
        self.obj_block = obj_block
        self.pre_handler_function = pre_handler_function
        self.post_handler_function = post_handler_function
        self.retry = retry
        self.timeouts = timeouts
        self.compensate = compensate

    @staticmethod
    def _resolve(flow: Flow, hook: Any) -> Any:
        if isinstance(hook, str):
            return getattr(flow, hook, None)
        return hook

    def init_block(self, instance_main: Any, step_number: int = 0) -> Any:
        """A block ready to link into ``instance_main``'s chain: a new instance for a class
        (with the step's hooks and the flow's logger), a copy for an instance; renamed
        ``<name>_<step_number>`` when the flow allows duplicate blocks. The FlowBlock itself
        is left as it was."""
        if not isinstance(instance_main, Flow):
            raise TypeError("Value `instance_main` must be a Flow")
        pre = self._resolve(instance_main, self.pre_handler_function)
        post = self._resolve(instance_main, self.post_handler_function)
        if isinstance(self.obj_block, type):
            block = self.obj_block(
                pre_handler_function=pre, post_handler_function=post, logger=instance_main.logger
            )
        else:
            block = copy.copy(self.obj_block)
            block._next = None
            if pre:
                block.pre_handler_function = pre
            if post:
                block.post_handler_function = post
            block.logger = instance_main.logger
        if instance_main.is_contains_duplicat_blocks:
            block.name_block = f"{block.name_block}_{step_number}"
        return block


def build_chain(builder: FlowBuilder, flow: Flow) -> Any:
    """Instantiate and link the blocks of ``builder`` for ``flow``; returns the head."""
    mode = flow._base_class_for_blocks
    blocks: list[Any] = []
    for index, step in enumerate(builder.steps):
        block = step.init_block(flow, index) if isinstance(step, LegacyFlowBlock) else step.block
        if not isinstance(block, mode):
            raise WorkTypeMismatchException("blocks", type(flow)._mode_name, mode.__name__)
        blocks.append(block)
    if not blocks:
        raise EmptyFlowError(f"flow {flow.name_flow!r} has no steps")
    for current, nxt in itertools.pairwise(blocks):
        current.set_next(nxt)
    return blocks[0]


class Flow:
    """Base of ``SyncFlow`` and ``AsyncFlow``: set ``name_flow`` and ``steps_flow`` (a
    ``FlowBuilder`` of ``FlowBlock``s); ``is_contains_duplicat_blocks = True`` allows the same
    block twice (its steps are then named ``<name>_<index>``)."""

    name_flow: ClassVar[str]
    steps_flow: ClassVar[FlowBuilder]
    is_contains_duplicat_blocks: ClassVar[bool] = False
    _base_class_for_blocks: ClassVar[type]
    _mode_name: ClassVar[str] = "Flow"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or DEFAULT_LOGGER
        if getattr(self, "name_flow", None) is None or getattr(self, "steps_flow", None) is None:
            raise NotImplementedError
        steps = self.steps_flow
        if not isinstance(steps, FlowBuilder):
            raise TypeError(
                f"Incorrect type 'steps_flow' - it must be 'FlowBuilder', and not {type(steps)}"
            )
        self.flow_chain = build_chain(steps, self)
        seen: set[str] = set()
        block = self.flow_chain
        while block is not None:
            if block.name_block in seen:
                raise NotUniqueBlockInFlowError(block.name_block, self.name_flow)
            seen.add(block.name_block)
            block = block.get_next()

    def get_steps(self) -> str:
        """The chain as text: ``"first block -> second block -> end"``."""
        steps: str = self.flow_chain.get_list_flow()
        return steps

    def blocks(self) -> list[Any]:
        """The instantiated blocks of the chain, in order."""
        found = []
        block = self.flow_chain
        while block is not None:
            found.append(block)
            block = block.get_next()
        return found


class SyncFlow(Flow):
    """A flow of ``SyncBlock``s."""

    _base_class_for_blocks = SyncBlock
    _mode_name = "SyncFlow"

    def to_go_with_the_flow(self, message: Any) -> None:
        """Hand the message to the chain (one block runs, chosen by the message's source)."""
        self.flow_chain.handle(message)


class AsyncFlow(Flow):
    """A flow of ``AsyncBlock``s."""

    _base_class_for_blocks = AsyncBlock
    _mode_name = "AsyncFlow"

    async def to_go_with_the_flow(self, message: Any) -> None:
        """Hand the message to the chain (one block runs, chosen by the message's source)."""
        await self.flow_chain.handle(message)


__all__ = ["AsyncFlow", "Flow", "LegacyFlowBlock", "SyncFlow", "build_chain"]
