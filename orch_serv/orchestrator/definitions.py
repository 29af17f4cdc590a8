"""Finding the definition a message names: this orchestrator's own flows and blocks first,
then (for flows without hooks) the versions other replicas published in the store."""

from __future__ import annotations

from typing import Any

from orch_serv.exceptions import FlowNotFound
from orch_serv.flow.flow import CompiledStep
from orch_serv.flow.registry import Definition, FlowRegistry
from orch_serv.messages.envelope import Envelope
from orch_serv.store.base import RunStore


class Definitions:
    """Definitions by (kind, name, version), with a cache of the ones read from the store."""

    def __init__(self, registry: FlowRegistry, store: RunStore) -> None:
        self.registry = registry
        self.store = store
        self._remote: dict[tuple[str, str, str], Definition] = {}

    async def get(self, kind: str, name: str | None, version: str | None) -> Definition:
        """The definition, or :class:`FlowNotFound` saying why none can be used."""
        if name is None:
            raise FlowNotFound("message names neither a flow nor a target")
        if not version:
            raise FlowNotFound(f"message for {kind} {name!r} carries no flow_version")
        found = self.registry.version(kind, name, version) or self._remote.get(
            (kind, name, version)
        )
        if found is not None:
            return found
        spec = await self.store.get_spec(kind, name, version)
        if spec is None:
            raise FlowNotFound(f"unknown {kind} {name!r} version {version!r}")
        if any(s.pre_hook or s.post_hook for s in spec.steps):
            raise FlowNotFound(
                f"{kind} {name!r} version {version!r} has hooks this orchestrator does not have"
            )
        steps = tuple(CompiledStep(s, None, None) for s in spec.steps)
        self._remote[(kind, name, version)] = found = Definition(spec, steps)
        return found

    async def of(self, message: Envelope[Any]) -> Definition:
        """The definition a message names (its target block, or its flow)."""
        if message.target:
            return await self.get("block", message.target, message.flow_version)
        return await self.get("flow", message.flow, message.flow_version)


def has_hooks(definition: Definition) -> bool:
    """Whether any step of the definition has a pre or post hook."""
    return any(step.pre is not None or step.post is not None for step in definition.steps)


__all__ = ["Definitions", "has_hooks"]
