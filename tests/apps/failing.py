"""A service that fails on demand, for the CLI tests of retry, cancel and the dead-letter queue.

* ``sometimes`` fails with a retryable error unless the marker file named in its body exists
  (the test creates the file to let a retried attempt succeed); failing, it creates nothing.
* ``forever`` touches the file named in its body (so a test knows the handler is running),
  then waits for an event that is never set: only a cancel notice ends it.

The flow ``hooked`` runs ``sometimes`` behind an orchestrator-side pre hook that raises
(failing the run with a ``HookError``) while the marker is missing.

``orch-serv dev tests.apps.failing:orchestrator`` serves the flows ``sometimes``, ``forever``
and ``hooked`` and hosts the service ``flaky``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orch_serv import (
    Block,
    Envelope,
    Flow,
    FlowBlock,
    FlowBuilder,
    HandlerError,
    Orchestrator,
    Service,
)

SERVICE = "flaky"


class Marker(BaseModel):
    """Body of ``sometimes``: the file whose existence lets the step succeed."""

    marker: str


class Started(BaseModel):
    """Body of ``forever``: the file it touches once it runs."""

    started: str


class MarkerMissing(HandlerError):
    """Retryable: the step succeeds once the marker exists."""


flaky = Service(SERVICE)


@flaky.command("sometimes")
def sometimes(body: Marker) -> dict[str, str]:
    """Succeeds only when ``body.marker`` exists (synchronous, runs in the thread pool)."""
    if not Path(body.marker).exists():
        raise MarkerMissing(f"marker {body.marker} does not exist yet", retryable=True)
    return {"marker": body.marker, "seen": "yes"}


@flaky.command("forever")
async def forever(body: Started) -> None:
    """Runs until it is cancelled."""
    await asyncio.to_thread(Path(body.started).touch)
    await asyncio.Event().wait()


class Sometimes(Block):
    name_block = "sometimes"
    service = SERVICE
    command = "sometimes"


class Forever(Block):
    name_block = "forever"
    service = SERVICE
    command = "forever"


class SometimesFlow(Flow):
    """One step, no retry policy: a failure fails the run (until ``orch-serv retry``)."""

    name_flow = "sometimes"
    steps_flow = FlowBuilder(FlowBlock(Sometimes))


class ForeverFlow(Flow):
    """One step that never ends on its own (for ``orch-serv cancel``)."""

    name_flow = "forever"
    steps_flow = FlowBuilder(FlowBlock(Forever))


def require_marker(message: Envelope[Any]) -> Envelope[Any]:
    """Pre hook (runs in the orchestrator): raises while the body's marker does not exist."""
    body = message.body if isinstance(message.body, dict) else {}
    if not Path(str(body.get("marker"))).exists():
        raise RuntimeError(f"marker {body.get('marker')} does not exist yet (pre hook)")
    return message


class HookedFlow(Flow):
    """``sometimes`` behind a pre hook that fails the run while the marker is missing."""

    name_flow = "hooked"
    steps_flow = FlowBuilder(FlowBlock(Sometimes, pre_handler_function=require_marker))


FLOWS = ("sometimes", "forever", "hooked")

orchestrator = Orchestrator(flows=[SometimesFlow, ForeverFlow, HookedFlow], services=[flaky])
