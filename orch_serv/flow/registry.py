"""The flows and blocks one orchestrator knows, with their versions and defaults."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from orch_serv.exceptions import (
    FlowNotFound,
    NoDateException,
    NotFoundDefaultError,
    UniqueNameException,
    WrongTypeException,
)
from orch_serv.flow.block import Block, as_block
from orch_serv.flow.flow import CompiledStep, Flow, block_spec, block_steps
from orch_serv.flow.groupflows import child_definitions
from orch_serv.flow.spec import FlowSpec


@dataclass(frozen=True, slots=True)
class Definition:
    """A flow or block ready to run: its stored spec and its compiled steps."""

    spec: FlowSpec
    steps: tuple[CompiledStep, ...]


def _members(value: Any, base: type, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, ModuleType):
        return list(
            dict.fromkeys(
                cls
                for _, cls in inspect.getmembers(value, inspect.isclass)
                if issubclass(cls, base)
                and cls is not base
                and getattr(cls, "name_flow" if base is Flow else "name_block", None) is not None
            )
        )
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise WrongTypeException(
            f"Invalid variable type `{what}`. Give a list of classes or instances, or a module, "
            f"not `{type(value).__name__}`"
        )
    return list(value)


class FlowRegistry:
    """Flows and blocks by name, validated once at construction."""

    def __init__(
        self,
        flows: Iterable[type[Flow] | Flow] | ModuleType | None = None,
        blocks: Iterable[type[Block] | Block] | ModuleType | None = None,
        *,
        default_flow: str | None = None,
        default_block: str | None = None,
    ) -> None:
        self._flows: dict[str, Definition] = {}
        self._blocks: dict[str, Definition] = {}
        #: The flows the branches of group steps run (``<flow>~<step>~<branch>``).
        self._branches: dict[str, Definition] = {}
        for item in _members(flows, Flow, "flows"):
            flow = self._as_flow(item)
            spec = type(flow).spec()
            if spec.name in self._flows:
                raise UniqueNameException(
                    f"The flow name `{spec.name}` is not unique to this orchestrator"
                )
            self._flows[spec.name] = Definition(spec, flow.compile())
            for child, steps in child_definitions(flow):
                self._branches[child.name] = Definition(child, steps)
        for item in _members(blocks, Block, "blocks"):
            block = as_block(item)
            if block.name_block in self._blocks:
                raise UniqueNameException(
                    f"The block name `{block.name_block}` is not unique to this orchestrator"
                )
            self._blocks[block.name_block] = Definition(block_spec(block), block_steps(block))
        if not self._flows and not self._blocks:
            raise NoDateException("There is no data for the orchestrator to work correctly")
        if default_flow is not None and default_flow not in self._flows:
            raise NotFoundDefaultError(
                f"Not exist default value {default_flow!r} for flows. "
                f"Allowed values: {list(self._flows)}"
            )
        if default_block is not None and default_block not in self._blocks:
            raise NotFoundDefaultError(
                f"Not exist default value {default_block!r} for blocks. "
                f"Allowed values: {list(self._blocks)}"
            )
        self.default_flow = default_flow
        self.default_block = default_block
        self._by_version: dict[tuple[str, str, str], Definition] = {
            (d.spec.kind, d.spec.name, d.spec.version): d
            for d in [*self._flows.values(), *self._branches.values(), *self._blocks.values()]
        }

    @staticmethod
    def _as_flow(item: object) -> Flow:
        if isinstance(item, Flow):
            return item
        if isinstance(item, type) and issubclass(item, Flow):
            return item()
        raise WrongTypeException(f"{item!r}: `obj` is not a Flow class or instance")

    def get_list_flows(self) -> list[str]:
        """Flow names in registration order."""
        return list(self._flows)

    def get_list_blocks(self) -> list[str]:
        """Block names in registration order."""
        return list(self._blocks)

    def specs(self) -> list[FlowSpec]:
        """Every flow (with the flows of group branches) and block spec, for publishing to the
        store."""
        every = [*self._flows.values(), *self._branches.values(), *self._blocks.values()]
        return [d.spec for d in every]

    def resolve(self, flow: str | None = None, target: str | None = None) -> Definition:
        """What a start request runs: a target wins over a flow; unknown names fall back to
        the default, and with no default raise :class:`FlowNotFound`."""
        if target is not None:
            found = self._blocks.get(target) or self._blocks.get(self.default_block or "")
            if found is None:
                raise FlowNotFound(f"unknown block {target!r}; known: {self.get_list_blocks()}")
            return found
        if flow is None:
            raise FlowNotFound("a start needs a flow or a target block")
        found = self._flows.get(flow) or self._flows.get(self.default_flow or "")
        if found is None:
            raise FlowNotFound(f"unknown flow {flow!r}; known: {self.get_list_flows()}")
        return found

    def version(self, kind: str, name: str, version: str) -> Definition | None:
        """The definition a run is pinned to, when this process has that version."""
        return self._by_version.get((kind, name, version))
