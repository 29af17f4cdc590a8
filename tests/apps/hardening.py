"""A one-step service for the hardening tests of the service runtime (issue #8).

* ``act`` counts its calls in :class:`Probe` (so a test can prove a handler never ran) and
  echoes its body;
* ``guarded`` waits until ``Probe.expected`` deliveries are inside it (so duplicates of one
  command run concurrently), then performs its effect under ``ctx.once``;
* ``boom`` raises a plain exception (its log line must carry the traceback).

``orch-serv service tests.apps.hardening:work`` hosts the service ``work``.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, HandlerContext, Orchestrator, Service


class Item(BaseModel):
    """The body of every step."""

    n: int = 0


class Probe:
    """What the handlers did in this process."""

    calls: ClassVar[int] = 0
    effects: ClassVar[int] = 0
    expected: ClassVar[int] = 1
    all_in: ClassVar[asyncio.Event | None] = None
    once_results: ClassVar[list[bool]] = []

    @classmethod
    def reset(cls, expected: int = 1) -> None:
        """Forget earlier calls; ``guarded`` will wait for ``expected`` concurrent calls."""
        cls.calls = 0
        cls.effects = 0
        cls.expected = expected
        cls.all_in = asyncio.Event()
        cls.once_results = []


work = Service("work")


@work.command("act")
async def act(body: Item) -> Item:
    """Counts the call and echoes the body."""
    Probe.calls += 1
    return body


@work.command("guarded")
async def guarded(body: Item, ctx: HandlerContext) -> dict[str, Any]:
    """An effect guarded by ``ctx.once``, reached by every duplicate at the same time."""
    Probe.calls += 1
    assert Probe.all_in is not None
    if Probe.calls >= Probe.expected:
        Probe.all_in.set()
    await asyncio.wait_for(Probe.all_in.wait(), 30)
    first = await ctx.once("effect")
    Probe.once_results.append(first)
    if first:
        Probe.effects += 1
    return {"n": body.n, "key": ctx.idempotency_key}


@work.command("boom")
def boom(body: Item) -> Item:
    """Logs a line of its own (from the thread pool), then fails with an unexpected
    exception."""
    structlog.get_logger().info("boom_about_to_fail")
    raise RuntimeError(f"kaboom {body.n}")


class Act(Block):
    name_block = "act"
    service = "work"


class Guarded(Block):
    name_block = "guarded"
    service = "work"


class Boom(Block):
    name_block = "boom"
    service = "work"


class ActFlow(Flow):
    name_flow = "act_flow"
    steps_flow = FlowBuilder(FlowBlock(Act))


class GuardedFlow(Flow):
    name_flow = "guarded_flow"
    steps_flow = FlowBuilder(FlowBlock(Guarded))


class BoomFlow(Flow):
    name_flow = "boom_flow"
    steps_flow = FlowBuilder(FlowBlock(Boom))


orchestrator = Orchestrator(flows=[ActFlow, GuardedFlow, BoomFlow], services=[work])
