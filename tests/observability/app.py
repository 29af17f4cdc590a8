"""The flows of the observability tests: a known mix of outcomes.

* ``obs_pipeline``: three steps of service ``math`` (async, async, sync in the thread pool);
  each handler opens a span of its own, to show that handler spans nest under the step's.
* ``obs_flaky``: one step that fails its first attempt (``RuntimeError``) and is retried.
* ``obs_boom``: ``reserve`` (compensated by ``release``), then ``boom`` raising ``ValueError``:
  the run is compensated.
* ``obs_stall``: one step that never replies; its execution clock runs out.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry import trace

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, HandlerContext, Orchestrator, Service
from orch_serv.flow.policy import RetryPolicy, Timeouts

#: Name of the span each ``math`` handler opens.
USER_SPAN = "user work"

math = Service("math")
work = Service("work")


def _traced(name: str, body: Any) -> Any:
    with trace.get_tracer("tests.observability").start_as_current_span(USER_SPAN) as span:
        span.set_attribute("step", name)
        trail = list(body.get("trail", [])) if isinstance(body, dict) else []
        return {"trail": [*trail, name]}


@math.command("one")
async def one(body: Any) -> Any:
    """First step (async)."""
    return _traced("one", body)


@math.command("two")
async def two(body: Any) -> Any:
    """Second step (async)."""
    await asyncio.sleep(0)
    return _traced("two", body)


@math.command("three")
def three(body: Any) -> Any:
    """Third step (sync: the thread pool gets the step's context)."""
    return _traced("three", body)


@work.command("flaky")
async def flaky(body: Any, ctx: HandlerContext) -> Any:
    """Fails its first attempt."""
    if ctx.message.attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return body


@work.command("reserve")
async def reserve(body: Any) -> Any:
    """Holds something (undone by ``release``)."""
    return body


@work.command("release")
async def release(body: Any) -> Any:
    """Undoes ``reserve``."""
    return body


def explode(value: int) -> None:
    """A frame of the traceback the tests look for."""
    raise ValueError(f"boom {value}")


@work.command("boom")
async def boom(body: Any) -> Any:
    """Always fails, with a traceback through :func:`explode`."""
    explode(42)


@work.command("stall")
async def stall(body: Any) -> Any:
    """Never replies on its own."""
    await asyncio.Event().wait()


def _block(name: str, service: str) -> type[Block]:
    return type(name, (Block,), {"name_block": name, "service": service, "command": name})


def _flow(name: str, *steps: FlowBlock) -> type[Flow]:
    return type(name, (Flow,), {"name_flow": name, "steps_flow": FlowBuilder(*steps)})


Pipeline = _flow(
    "obs_pipeline",
    FlowBlock(_block("one", "math")),
    FlowBlock(_block("two", "math")),
    FlowBlock(_block("three", "math")),
)
FlakyFlow = _flow(
    "obs_flaky",
    FlowBlock(_block("flaky", "work"), retry=RetryPolicy(max_attempts=2, initial_delay=0.01)),
)
BoomFlow = _flow(
    "obs_boom",
    FlowBlock(_block("reserve", "work"), compensate="release"),
    FlowBlock(_block("boom", "work")),
)
StallFlow = _flow(
    "obs_stall",
    FlowBlock(_block("stall", "work"), timeouts=Timeouts(dispatch=60.0, execution=0.3)),
)

orchestrator = Orchestrator(flows=[Pipeline, FlakyFlow, BoomFlow, StallFlow], services=[math, work])
