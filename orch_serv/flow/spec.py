"""Serialisable flow definitions (what the store keeps) and their version hash."""

from __future__ import annotations

import hashlib
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field


class StepSpec(BaseModel):
    """One step as stored: where its command goes. Hooks are named for the version only."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    name: str
    block: str
    service: str
    command: str
    pre_hook: str | None = None
    post_hook: str | None = None


class FlowSpec(BaseModel):
    """A flow (or a single block run as a one-step flow) as the store keeps it."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["flow", "block"] = "flow"
    name: str
    version: str = ""
    steps: tuple[StepSpec, ...]

    def with_version(self) -> FlowSpec:
        """Return a copy whose ``version`` is the hash of its definition."""
        return self.model_copy(update={"version": compute_version(self)})

    def step(self, index: int) -> StepSpec | None:
        """The step at ``index``, or None past the end."""
        return self.steps[index] if 0 <= index < len(self.steps) else None


def compute_version(spec: FlowSpec) -> str:
    """A short, stable hash of what the flow does (not of its version field)."""
    payload = spec.model_dump(mode="json", exclude={"version"})
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:12]
