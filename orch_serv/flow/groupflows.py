"""The flows a group step's branches run: built, versioned and compiled with their parent.

A branch of ``Parallel`` (or the chain of a ``Map``) in the step ``s`` of the flow ``f`` is the
flow ``f~s~<branch>``: the same policies as ``f`` (its retry policy and timeouts, its status
model), hooks given by name resolved on ``f``'s class. Its spec's version is part of the
group step's definition, so changing a branch changes the parent's version too; the registry
registers the branch flows with the parent (:func:`child_definitions`), so the orchestrators
that know the parent know its branches, and publish them with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orch_serv.exceptions import FlowBlockException
from orch_serv.flow.groups import BranchRef, GroupBlock, GroupSpec, branch_flow_name

if TYPE_CHECKING:
    from orch_serv.flow.flow import CompiledStep, Flow, FlowBlock, FlowBuilder
    from orch_serv.flow.spec import FlowSpec


def _branches(
    cls: type[Flow], flow: str, step: str, block: GroupBlock
) -> list[tuple[str, FlowBuilder, FlowSpec]]:
    from orch_serv.flow.flow import FlowBuilder

    built = []
    for branch, chain in block.branches.items():
        builder = FlowBuilder(*chain)
        name = branch_flow_name(flow, step, branch)
        built.append((branch, builder, cls._flow_spec(name, builder, None)))
    return built


def group_of(cls: type[Flow], flow: str, step: str, fb: FlowBlock) -> GroupSpec | None:
    """The group spec of the step ``step`` of ``flow`` (None unless it is a group)."""
    block = fb.block
    if not isinstance(block, GroupBlock):
        return None
    if fb.compensate:
        raise FlowBlockException(
            f"group step {step!r} cannot declare a compensation (its members compensate "
            "their own steps)"
        )
    refs = [
        BranchRef(name=b, flow=spec.name, version=spec.version)
        for b, _, spec in _branches(cls, flow, step, block)
    ]
    return block.spec(refs)


def child_definitions(flow: Flow) -> list[tuple[FlowSpec, tuple[CompiledStep, ...]]]:
    """The branch flows of every group step of ``flow`` (and of their own groups), with
    their hooks bound to ``flow``."""
    name, builder = flow._check_declared()
    return _children(flow, name, builder, flow.spec())


def _children(
    flow: Flow, name: str, builder: FlowBuilder, spec: FlowSpec
) -> list[tuple[FlowSpec, tuple[CompiledStep, ...]]]:
    found: list[tuple[FlowSpec, tuple[CompiledStep, ...]]] = []
    for fb, step in zip(builder.steps, spec.steps, strict=True):
        if not isinstance(fb.block, GroupBlock):
            continue
        for _, sub_builder, sub_spec in _branches(type(flow), name, step.name, fb.block):
            found.append((sub_spec, flow.compile_chain(sub_builder, sub_spec)))
            found += _children(flow, sub_spec.name, sub_builder, sub_spec)
    return found


__all__ = ["child_definitions", "group_of"]
