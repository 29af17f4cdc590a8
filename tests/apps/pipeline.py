"""A 3-step flow over three commands of one service, for the invariant tests.

Each command appends its name to ``trail`` so the result shows every step ran in order.
``ORCH_SERV_TEST_DELAY`` (seconds) makes handlers take a little while, so that a process
can be killed while work is in flight.
"""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, HandlerContext, Orchestrator, Service

DELAY = float(os.environ.get("ORCH_SERV_TEST_DELAY", "0"))


class Trail(BaseModel):
    """The body every step extends."""

    n: int
    trail: list[str] = []


math = Service("math")


async def _step(name: str, body: Trail) -> Trail:
    if DELAY:
        await asyncio.sleep(DELAY)
    return Trail(n=body.n, trail=[*body.trail, name])


@math.command("one")
async def one(body: Trail, ctx: HandlerContext) -> Trail:
    """First step; records a lineage status."""
    await ctx.status("one_done", lineage={"files_incoming": [], "files_outgoing": [f"{body.n}"]})
    return await _step("one", body)


@math.command("two")
async def two(body: Trail) -> Trail:
    """Second step."""
    return await _step("two", body)


@math.command("three")
def three(body: Trail) -> Trail:
    """Third step, synchronous (runs in the thread pool)."""
    return Trail(n=body.n, trail=[*body.trail, "three"])


class One(Block):
    name_block = "one"
    service = "math"


class Two(Block):
    name_block = "two"
    service = "math"


class Three(Block):
    name_block = "three"
    service = "math"


class Pipeline(Flow):
    name_flow = "pipeline"
    steps_flow = FlowBuilder(FlowBlock(One), FlowBlock(Two), FlowBlock(Three))


orchestrator = Orchestrator(flows=[Pipeline], blocks=[Two], services=[math])
