"""Handlers and flows for the failure-semantics tests (timeouts, retries, cancellation,
compensation). Shared state is kept in `Probe` so tests can observe handlers."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from orch_serv import (
    Block,
    Flow,
    FlowBlock,
    FlowBuilder,
    HandlerContext,
    NonRetryableError,
    Orchestrator,
    Service,
)
from orch_serv.exceptions import HandlerError, RetryAfter
from orch_serv.flow.policy import RetryPolicy, Timeouts


class Probe:
    """What the handlers saw; reset by each test."""

    calls: ClassVar[dict[str, int]] = {}
    log: ClassVar[list[str]] = []
    stopped: ClassVar[asyncio.Event | None] = None
    flag_seen: ClassVar[bool] = False

    @classmethod
    def reset(cls) -> None:
        cls.calls = {}
        cls.log = []
        cls.stopped = asyncio.Event()
        cls.flag_seen = False

    @classmethod
    def count(cls, name: str) -> int:
        cls.calls[name] = cls.calls.get(name, 0) + 1
        return cls.calls[name]


work = Service("work")


@work.command("block_forever")
async def block_forever(body: Any, ctx: HandlerContext) -> Any:
    """Never replies on its own (execution / deadline / cancel tests)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        assert Probe.stopped is not None
        Probe.stopped.set()
        raise


@work.command("beat_once")
async def beat_once(body: Any, ctx: HandlerContext) -> Any:
    """Sends one heartbeat with progress, then goes silent."""
    await ctx.heartbeat(progress={"done": 1, "of": 10})
    await asyncio.Event().wait()


@work.command("flaky")
async def flaky(body: Any) -> Any:
    """Fails twice with a retryable error, then succeeds."""
    attempt = Probe.count("flaky")
    if attempt <= 2:
        raise HandlerError(f"transient failure {attempt}", type="Transient")
    return {"ok": attempt}


@work.command("refuse")
async def refuse(body: Any) -> Any:
    """Fails for good."""
    Probe.count("refuse")
    raise NonRetryableError("bad request", type="BadRequest")


@work.command("later")
async def later(body: Any) -> Any:
    """Asks for a retry after a given delay, once."""
    if Probe.count("later") == 1:
        raise RetryAfter(0.05, "upstream busy")
    return {"done": True}


@work.command("spin_sync")
def spin_sync(body: Any, ctx: HandlerContext) -> Any:
    """A synchronous handler that checks its cancellation flag."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ctx.cancelled:
            Probe.flag_seen = True
            return {"stopped": True}
        time.sleep(0.01)
    return {"stopped": False}


@work.command("reserve")
async def reserve(body: dict[str, Any]) -> dict[str, Any]:
    """Reserves something; its output is what the compensation gets."""
    Probe.log.append(f"reserve:{body['item']}")
    return {"item": body["item"], "reservation": f"r-{body['item']}"}


@work.command("release")
async def release(body: dict[str, Any]) -> dict[str, Any]:
    """Compensation of reserve."""
    Probe.log.append(f"release:{body['reservation']}")
    return body


@work.command("charge")
async def charge(body: dict[str, Any]) -> dict[str, Any]:
    """Always fails (the step whose failure triggers compensation)."""
    Probe.log.append("charge")
    raise NonRetryableError("card declined", type="Declined")


def _block(name: str, command: str | None = None) -> type[Block]:
    return type(name, (Block,), {"name_block": name, "service": "work", "command": command or name})


BlockForever = _block("block_forever")
BeatOnce = _block("beat_once")
Flaky = _block("flaky")
Refuse = _block("refuse")
Later = _block("later")
SpinSync = _block("spin_sync")
Ghost = type("Ghost", (Block,), {"name_block": "ghost", "service": "ghost", "command": "x"})
ReserveA = _block("reserve_a", "reserve")
ReserveB = _block("reserve_b", "reserve")
Charge = _block("charge")

FAR = 60.0  # a limit the test never comes near
NEAR = 1.0  # a limit that the blocked handler is sure to pass, and a quick one is sure not to


def _flow(name: str, *steps: FlowBlock, deadline: float | None = None) -> type[Flow]:
    return type(
        name, (Flow,), {"name_flow": name, "steps_flow": FlowBuilder(*steps), "deadline": deadline}
    )


SlowFlow = _flow("slow", FlowBlock(BlockForever, timeouts=Timeouts(dispatch=FAR, execution=NEAR)))
NoConsumerFlow = _flow(
    "no_consumer", FlowBlock(Ghost, timeouts=Timeouts(dispatch=NEAR, execution=FAR))
)
SilentFlow = _flow(
    "silent", FlowBlock(BeatOnce, timeouts=Timeouts(dispatch=FAR, heartbeat=NEAR, execution=FAR))
)
DeadlineFlow = _flow("deadline", FlowBlock(BlockForever), deadline=NEAR)
FlakyFlow = _flow(
    "flaky", FlowBlock(Flaky, retry=RetryPolicy(max_attempts=3, initial_delay=0.01, backoff=2.0))
)
RefuseFlow = _flow("refuse", FlowBlock(Refuse, retry=RetryPolicy(max_attempts=5)))
LaterFlow = _flow("later", FlowBlock(Later, retry=RetryPolicy(max_attempts=2, initial_delay=FAR)))
TotalFlow = _flow(
    "total",
    FlowBlock(
        Flaky, retry=RetryPolicy(max_attempts=5, initial_delay=FAR), timeouts=Timeouts(total=NEAR)
    ),
)
#: For the SIGKILL test: long enough to kill the replica that set the timer before it is due.
LateDispatchFlow = _flow("late_dispatch", FlowBlock(Ghost, timeouts=Timeouts(dispatch=4.0)))
CancelFlow = _flow("cancellable", FlowBlock(BlockForever))
CancelSyncFlow = _flow("cancellable_sync", FlowBlock(SpinSync))
Booking = _flow(
    "booking",
    FlowBlock(ReserveA, compensate="release"),
    FlowBlock(ReserveB, compensate="release"),
    FlowBlock(Charge),
)
CompensateOnCancel = _flow(
    "hold_then_wait",
    FlowBlock(ReserveA, compensate="release"),
    FlowBlock(BlockForever),
)

orchestrator = Orchestrator(
    flows=[
        SlowFlow,
        NoConsumerFlow,
        SilentFlow,
        DeadlineFlow,
        FlakyFlow,
        RefuseFlow,
        LaterFlow,
        TotalFlow,
        LateDispatchFlow,
        CancelFlow,
        CancelSyncFlow,
        Booking,
        CompensateOnCancel,
    ],
    services=[work],
)
