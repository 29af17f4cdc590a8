"""The pydantic models a flow file is validated with (and its JSON Schema is generated from).

::

    flows:
      - name: ingest
        steps:
          - block: validate_csv
            service: validator
          - {block: transform, service: transformer, post_hook: "flows.hooks:add_provenance"}
          - {block: publish, service: publisher}

A field left out means what leaving it out of the Python definition means, so that a YAML flow
and its Python twin have the same :class:`~orch_serv.flow.spec.FlowSpec` and version.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from orch_serv.flow.groups import DEFAULT_GROUP_POLL, Join, group_problem
from orch_serv.flow.policy import RetryPolicy, Timeouts
from orch_serv.flow.waits import DEFAULT_POLL, DEFAULT_SIGNAL_POLL

#: Names of flows, blocks, services and commands (they are in queue names and Redis keys).
NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
#: ``package.module:attribute`` (the attribute may be dotted: ``module:Class.attr``).
IMPORT_PATTERN = rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*$"

Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="1-128 letters, digits, '_', '.' or '-'.",
    ),
]
ImportPath = Annotated[
    str,
    Field(
        pattern=IMPORT_PATTERN,
        description="A Python import path 'package.module:attribute'.",
        examples=["flows.hooks:add_provenance"],
    ),
]
Hook = Annotated[
    ImportPath | None,
    Field(
        description=(
            "Orchestrator-side hook, as the import path 'module:function' of a callable taking "
            "the message envelope and returning it (possibly changed), a new one or null."
        )
    ),
]


def _strict_retry(value: Any) -> Any:
    """Files are validated in strict mode (no "3" for 3), where a set must be a set: a YAML
    list of error types becomes the frozenset ``RetryPolicy.non_retryable`` is."""
    if isinstance(value, dict) and isinstance(value.get("non_retryable"), list):
        names = value["non_retryable"]
        if all(isinstance(n, str) for n in names):
            return {**value, "non_retryable": frozenset(names)}
    return value


Retry = Annotated[
    RetryPolicy | None,
    BeforeValidator(_strict_retry),
    Field(description="How often and how late a failed step is tried again."),
]
StepTimeouts = Annotated[
    Timeouts | None,
    Field(description="The step's clocks in seconds (dispatch, heartbeat, execution, total)."),
]
Compensate = Annotated[
    Name | None,
    Field(description="Command (on the same service) that undoes the step when the run fails."),
]
Description = Annotated[str | None, Field(description="Free text, not part of the version.")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BlockDef(_Strict):
    """A block declared once: steps may use it by name, and it can run on its own (a
    target), like a Python ``Block`` given to ``Orchestrator(blocks=...)``."""

    name: Name = Field(description="The block's name (name_block).")
    service: Name = Field(description="The service that runs its command.")
    command: Name | None = Field(None, description="The command; defaults to the name.")
    pre_hook: Hook = None
    post_hook: Hook = None
    retry: Retry = None
    timeouts: StepTimeouts = None
    compensate: Compensate = None
    description: Description = None


class WaitDef(_Strict):
    """What a wait step holds the run for: a chart machine in a state (``chart``, ``state``,
    optional ``machine``), or a signal sent to the run (``signal``)."""

    chart: Name | None = Field(None, description="The chart whose machine is waited for.")
    machine: Name | None = Field(
        None, description="The chart's machine; left out, the chart's default machine."
    )
    state: Name | list[Name] | None = Field(
        None, description="The state (or any of the states) the machine must be in."
    )
    signal: Name | None = Field(None, description="The signal the run waits for.")
    timeout: float | None = Field(
        None, gt=0, description="Seconds the step waits at most (then it fails: StepTimeout)."
    )
    poll: float | None = Field(
        None,
        gt=0,
        le=3600,
        description=f"Seconds between two checks of the condition (default {DEFAULT_POLL:g} "
        f"for a chart, {DEFAULT_SIGNAL_POLL:g} for a signal, which is also noticed at once).",
    )

    @model_validator(mode="after")
    def _one_condition(self) -> WaitDef:
        if (self.chart is None) == (self.signal is None):
            raise ValueError("a wait names either a `chart` (with a `state`) or a `signal`")
        if self.chart is not None and not self.state:
            raise ValueError("a chart wait names the `state` (or states) to wait for")
        if self.signal is not None and (self.machine is not None or self.state is not None):
            raise ValueError("a signal wait has no `machine` or `state`")
        return self


class _GroupDef(_Strict):
    join: Join = Field(
        "all",
        description="How the members are joined: all, any, n_of_m, fail_fast or collect "
        "(docs/groups.md).",
    )
    n: int | None = Field(None, ge=1, description="Successes needed with join n_of_m.")
    timeout: float | None = Field(
        None, gt=0, description="Seconds the step runs at most (then it fails: StepTimeout)."
    )
    poll: float | None = Field(
        None,
        gt=0,
        le=3600,
        description=f"Seconds between two checks of the members (default "
        f"{DEFAULT_GROUP_POLL:g}; a member that ends is noticed at once).",
    )

    def problem(self, kind: str, branches: list[str], max_concurrency: int | None) -> None:
        found = group_problem(kind, branches, self.join, self.n, max_concurrency)
        if found is not None:
            raise ValueError(found)


class ParallelDef(_GroupDef):
    """Branches run at once on the step's input, each a chain of steps, joined into a mapping
    by branch name."""

    branches: dict[Name, list[StepDef]] = Field(
        min_length=1, description="Branch name -> its steps, in order."
    )

    @model_validator(mode="after")
    def _shape(self) -> ParallelDef:
        for name, steps in self.branches.items():
            if not steps:
                raise ValueError(f"branch {name!r} has no steps")
        self.problem("parallel", list(self.branches), None)
        return self


class MapDef(_GroupDef):
    """A chain of steps run once per element of the list the step is given, joined into a
    list in element order."""

    steps: list[StepDef] = Field(min_length=1, description="The steps run per element.")
    max_concurrency: int | None = Field(
        None, ge=1, description="The most elements in progress at a time (default: all)."
    )

    @model_validator(mode="after")
    def _shape(self) -> MapDef:
        self.problem("map", ["each"], self.max_concurrency)
        return self


class StepDef(_Strict):
    """One step of a flow: a block given inline (``block`` and ``service``), a block of
    ``blocks`` used by name (``block`` only), a wait (``wait``), or a group (``parallel``,
    ``map``), with this flow's own hooks and policies."""

    block: Name | None = Field(
        None,
        description="The block's name; the step is named after it (for a wait: optional, "
        "`wait_<chart or signal>` when left out).",
    )
    wait: WaitDef | None = Field(
        None, description="Hold the run until a chart state or a signal (instead of a block)."
    )
    parallel: ParallelDef | None = Field(
        None, description="Run branches at once and join them (instead of a block)."
    )
    map: MapDef | None = Field(
        None, description="Run steps once per element of a list and join them in order."
    )
    service: Name | None = Field(
        None, description="The service; left out, the block is the one declared in `blocks`."
    )
    command: Name | None = Field(None, description="The command; defaults to the block name.")
    pre_hook: Hook = None
    post_hook: Hook = None
    retry: Retry = None
    timeouts: StepTimeouts = None
    compensate: Compensate = None
    description: Description = None

    @model_validator(mode="after")
    def _block_or_wait(self) -> StepDef:
        kinds = [k for k in ("wait", "parallel", "map") if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise ValueError(f"a step is one of `wait`, `parallel` or `map`, not {kinds}")
        if not kinds:
            if self.block is None:
                raise ValueError("a step names a `block` (or is a `wait`, `parallel` or `map`)")
            return self
        given = [k for k in ("service", "command", "compensate", "timeouts") if getattr(self, k)]
        if given:
            raise ValueError(
                f"a {kinds[0]} step has no `{given[0]}` (its limit is `{kinds[0]}.timeout`)"
                if given[0] == "timeouts"
                else f"a {kinds[0]} step has no `{given[0]}`"
            )
        return self


ParallelDef.model_rebuild()
MapDef.model_rebuild()


class FlowDef(_Strict):
    """A flow: a named chain of steps, like a Python ``Flow`` subclass."""

    name: Name = Field(description="The flow's name (name_flow).")
    steps: list[StepDef] = Field(min_length=1, description="The steps, in order.")
    retry: Retry = Field(None, description="Retry policy of steps that set none of their own.")
    timeouts: StepTimeouts = Field(None, description="Timeouts of steps, where a step sets none.")
    deadline: float | None = Field(
        None, gt=0, description="Seconds from creation after which a run ends TIMED_OUT."
    )
    status_model: str | None = Field(
        None,
        min_length=1,
        description="Name of the published status model the handlers' statuses are held to.",
    )
    description: Description = None


class FlowsFile(_Strict):
    """An orch_serv flow file: flows (and blocks) for one orchestrator."""

    model_config = ConfigDict(title="orch_serv flow file")

    flows: list[FlowDef] = Field(min_length=1, description="The flows, in registration order.")
    blocks: list[BlockDef] = Field(
        default_factory=list, description="Blocks steps use by name; each also runs on its own."
    )
    default_flow: Name | None = Field(None, description="Flow run for an unknown flow name.")
    default_block: Name | None = Field(None, description="Block run for an unknown target.")
    services: list[ImportPath] = Field(
        default_factory=list,
        description=(
            "Import paths of the services `orch-serv dev` and `orch-serv service` host for "
            "this file (not part of any flow's version)."
        ),
    )


__all__ = [
    "IMPORT_PATTERN",
    "NAME_PATTERN",
    "BlockDef",
    "FlowDef",
    "FlowsFile",
    "MapDef",
    "ParallelDef",
    "StepDef",
    "WaitDef",
]
