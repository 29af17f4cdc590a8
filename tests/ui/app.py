"""The application the dashboard tests watch: a service ``work`` and three flows.

* ``ship``: reserve (compensated by ``release``) -> pack -> send; ``send`` raises a
  ``ValueError`` when the body says ``fail`` (retried once, then the run is compensated),
  and records a lineage status on success.
* ``fragile``: one step that always raises ``ValueError`` (no retry): the run FAILS.
* ``forever``: one step that touches a file, then runs until it is cancelled.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel

from orch_serv import (
    Block,
    Flow,
    FlowBlock,
    FlowBuilder,
    HandlerContext,
    Orchestrator,
    RetryPolicy,
    Service,
)

SERVICE = "work"
FLOWS = ("ship", "fragile", "forever")


class Order(BaseModel):
    """The body of ``ship`` and ``fragile``."""

    n: int
    fail: bool = False


class Started(BaseModel):
    """The body of ``forever``: the file it touches once it runs."""

    started: str


work = Service(SERVICE)


@work.command("reserve")
def reserve(body: Order) -> Order:
    """Step 1 of ``ship``."""
    return body


@work.command("release")
def release(body: Order) -> Order:
    """Undoes ``reserve``."""
    return body


@work.command("pack")
def pack(body: Order) -> Order:
    """Step 2 of ``ship``."""
    return body


@work.command("send")
async def send(body: Order, ctx: HandlerContext) -> Order:
    """Step 3 of ``ship``: fails on demand, else records where the order went."""
    if body.fail:
        raise ValueError(f"cannot send order {body.n}: the carrier refused it")
    await ctx.status("sent", lineage={"files_incoming": [f"order-{body.n}"], "files_outgoing": []})
    return body


@work.command("explode")
def explode(body: Order) -> Order:
    """The one step of ``fragile``."""
    raise ValueError(f"order {body.n} is malformed")


@work.command("forever")
async def forever(body: Started) -> None:
    """Runs until it is cancelled."""
    await asyncio.to_thread(Path(body.started).touch)
    await asyncio.Event().wait()


class Reserve(Block):
    name_block = "reserve"
    service = SERVICE
    compensate = "release"


class Pack(Block):
    name_block = "pack"
    service = SERVICE


class Send(Block):
    name_block = "send"
    service = SERVICE
    retry = RetryPolicy(max_attempts=2, initial_delay=0.05)


class Explode(Block):
    name_block = "explode"
    service = SERVICE


class Forever(Block):
    name_block = "forever"
    service = SERVICE


class Ship(Flow):
    name_flow = "ship"
    steps_flow = FlowBuilder(FlowBlock(Reserve), FlowBlock(Pack), FlowBlock(Send))


class Fragile(Flow):
    name_flow = "fragile"
    steps_flow = FlowBuilder(FlowBlock(Explode))


class ForeverFlow(Flow):
    name_flow = "forever"
    steps_flow = FlowBuilder(FlowBlock(Forever))


orchestrator = Orchestrator(flows=[Ship, Fragile, ForeverFlow], services=[work])
