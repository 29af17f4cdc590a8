"""Serialisable flow definitions (what the store keeps) and their version hash."""

from __future__ import annotations

import hashlib
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from orch_serv.flow.groups import GroupSpec
from orch_serv.flow.policy import RetryPolicy, Timeouts
from orch_serv.flow.waits import WaitSpec


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
    retry: RetryPolicy | None = None
    timeouts: Timeouts | None = None
    #: Command (on the same service) that undoes this step when the run fails.
    compensate: str | None = None
    #: What a wait step waits for (:mod:`orch_serv.flow.waits`); None for a step that runs a
    #: command in a service. Left out of the version hash when None.
    wait: WaitSpec | None = None
    #: The members a group step runs and how it joins them (:mod:`orch_serv.flow.groups`);
    #: None for any other step. Left out of the version hash when None.
    group: GroupSpec | None = None

    @property
    def kept(self) -> bool:
        """Whether the orchestrators keep the step (a wait or a group: no service runs it)."""
        return self.wait is not None or self.group is not None


class FlowSpec(BaseModel):
    """A flow (or a single block run as a one-step flow) as the store keeps it."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["flow", "block"] = "flow"
    name: str
    version: str = ""
    steps: tuple[StepSpec, ...]
    #: Seconds from the run's creation after which it ends TIMED_OUT (Statusek's timeout).
    deadline: float | None = Field(None, gt=0)
    #: The status model (by name) its handlers' statuses are held to; None: statuses are free.
    status_model: str | None = Field(None, min_length=1)

    def with_version(self) -> FlowSpec:
        """Return a copy whose ``version`` is the hash of its definition."""
        return self.model_copy(update={"version": compute_version(self)})

    def step(self, index: int) -> StepSpec | None:
        """The step at ``index``, or None past the end."""
        return self.steps[index] if 0 <= index < len(self.steps) else None

    def compensation_before(self, index: int) -> StepSpec | None:
        """The nearest step before ``index`` that declares a compensation (they run in
        reverse order), or None."""
        for step in reversed(self.steps[: max(index, 0)]):
            if step.compensate:
                return step
        return None


def compute_version(spec: FlowSpec) -> str:
    """A short, stable hash of what the flow does (not of its version field)."""
    payload = spec.model_dump(mode="json", exclude={"version"}, exclude_none=True)
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:12]
