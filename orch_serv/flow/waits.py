"""Steps that wait: until a chart machine is in a state, or until a signal reaches the run.

::

    class Deploy(Flow):
        name_flow = "deploy"
        steps_flow = FlowBuilder(
            FlowBlock(Build),
            FlowBlock(WaitForChart("rollout", state="go", machine="eu-1")),
            FlowBlock(WaitForSignal("approved", timeout=3600)),
            FlowBlock(Release),
        )

A wait step sends no command: the orchestrator holds the run at the step and checks the
condition from its timer set (any replica, under the timer's lease) every ``poll`` seconds
(5 for a chart, 300 for a signal), and at once when a signal arrives. When it holds, the step
completes like any other: its output is the signal's data (when the signal carries some) or
else the step's input unchanged, so the next step gets what the step before the wait
produced. ``timeout`` bounds the wait (the step's ``total`` clock): the step then fails with
``StepTotalTimeout``, which is not retried, and the run ends TIMED_OUT (after compensating
the steps before it that declare a compensation). The dispatch, heartbeat and execution
clocks do not apply to a wait.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from orch_serv.flow.block import Block
from orch_serv.flow.policy import Timeouts

#: The service name wait steps carry (no process consumes it: the orchestrator keeps them).
WAITS_SERVICE: Final = "orch_serv.waits"
#: Default seconds between two checks of a chart wait's condition.
DEFAULT_POLL: Final = 5.0
#: Default seconds between two checks of a signal wait (a safety net: a signal makes the
#: check due at once).
DEFAULT_SIGNAL_POLL: Final = 300.0

_Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]


class WaitSpec(BaseModel):
    """What a wait step waits for (stored in the step's definition, part of its version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``chart``: a chart machine in one of ``states``; ``signal``: the signal ``signal``.
    kind: Literal["chart", "signal"]
    chart: _Name | None = None
    machine: _Name | None = None
    states: tuple[_Name, ...] | None = None
    signal: _Name | None = None
    #: Seconds between two checks (a signal is also noticed at once when it arrives).
    poll: float = Field(DEFAULT_POLL, gt=0, le=3600)

    @model_validator(mode="after")
    def _complete(self) -> WaitSpec:
        if self.kind == "chart":
            if not self.chart or not self.states or self.signal is not None:
                raise ValueError("a chart wait names a chart and one or more states, no signal")
        elif not self.signal or self.chart or self.machine or self.states:
            raise ValueError("a signal wait names a signal and no chart, machine or states")
        return self


def _timeouts(timeout: float | None) -> Timeouts | None:
    return None if timeout is None else Timeouts(total=timeout)


class WaitBlock(Block):
    """A block that waits (see the module's documentation); made by :func:`WaitForChart` and
    :func:`WaitForSignal`."""

    def __init__(
        self,
        name_block: str,
        wait: WaitSpec,
        *,
        timeout: float | None = None,
    ) -> None:
        super().__init__(
            name_block, service=WAITS_SERVICE, command=wait.kind, timeouts=_timeouts(timeout)
        )
        self.wait = wait

    def __repr__(self) -> str:
        return f"WaitBlock({self.name_block!r}, {self.wait!r})"


def WaitForChart(
    chart: str,
    *,
    state: str | list[str] | tuple[str, ...],
    machine: str | None = None,
    name: str | None = None,
    timeout: float | None = None,
    poll: float = DEFAULT_POLL,
) -> WaitBlock:
    """A step that holds the run until machine ``machine`` of chart ``chart`` (the chart's
    default machine when None) is in ``state`` (or one of several states)."""
    states = (state,) if isinstance(state, str) else tuple(state)
    spec = WaitSpec(kind="chart", chart=chart, machine=machine, states=states, poll=poll)
    return WaitBlock(name or f"wait_{chart}", spec, timeout=timeout)


def WaitForSignal(
    signal: str,
    *,
    name: str | None = None,
    timeout: float | None = None,
    poll: float = DEFAULT_SIGNAL_POLL,
) -> WaitBlock:
    """A step that holds the run until the signal ``signal`` is sent to it (``orch-serv
    signal RUN NAME``, ``POST /v1/runs/{id}/signals/{name}``, ``Client.signal``). A signal
    sent before the run reaches the step is kept and lets it through at once."""
    spec = WaitSpec(kind="signal", signal=signal, poll=poll)
    return WaitBlock(name or f"wait_{signal}", spec, timeout=timeout)


__all__ = [
    "DEFAULT_POLL",
    "DEFAULT_SIGNAL_POLL",
    "WAITS_SERVICE",
    "WaitBlock",
    "WaitForChart",
    "WaitForSignal",
    "WaitSpec",
]
