"""Flows with parallel branches and maps, and the service around them, for the group tests
(test kit, CLI processes)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from orch_serv import (
    Block,
    Flow,
    FlowBlock,
    FlowBuilder,
    Map,
    Orchestrator,
    Parallel,
    RetryPolicy,
    Service,
    Timeouts,
)
from orch_serv.exceptions import OrchServError

shop = Service("shop")
#: Bodies each command was called with (the tests count executions).
CALLS: dict[str, list[Any]] = {}
#: Compensations run (the output each undid).
UNDONE: list[Any] = []


def _called(name: str, body: Any) -> None:
    CALLS.setdefault(name, []).append(body)


class Boom(OrchServError):
    """A handler's planned failure."""


@shop.command("upper")
async def upper(body: Any) -> Any:
    """Upper-cases the ``text`` of its body."""
    _called("upper", body)
    return {"text": str(body["text"]).upper()}


@shop.command("lower")
async def lower(body: Any) -> Any:
    """Lower-cases the ``text`` of its body."""
    _called("lower", body)
    return {"text": str(body["text"]).lower()}


@shop.command("wrap")
async def wrap(body: Any) -> Any:
    """Wraps what it is given."""
    _called("wrap", body)
    return {"wrapped": body}


@shop.command("double")
async def double(body: Any) -> Any:
    """Doubles a number; fails on a negative one, never ends on 13 (a timeout)."""
    _called("double", body)
    if isinstance(body, dict):  # after ``book``
        body = body["booked"]
    if body < 0:
        raise Boom(f"negative: {body}")
    if body == 13:
        await asyncio.Event().wait()
    return body * 2


@shop.command("fail")
async def fail(body: Any) -> Any:
    """Always fails."""
    _called("fail", body)
    raise Boom("planned failure")


@shop.command("book")
async def book(body: Any) -> Any:
    """Books something (undone by ``unbook``)."""
    _called("book", body)
    return {"booked": body}


@shop.command("unbook")
async def unbook(body: Any) -> Any:
    """Undoes ``book``."""
    UNDONE.append(body)
    return None


@shop.command("inc")
async def inc(body: int) -> int:
    """Adds one (slowed by ``ORCH_SERV_TEST_DELAY`` seconds, for the process tests)."""
    delay = float(os.environ.get("ORCH_SERV_TEST_DELAY", "0"))
    if delay:
        await asyncio.sleep(delay)
    return body + 1


@shop.command("echo")
async def echo(body: Any) -> Any:
    """Returns its body."""
    return body


class Upper(Block):
    name_block = "upper"
    service = "shop"


class Lower(Block):
    name_block = "lower"
    service = "shop"


class Wrap(Block):
    name_block = "wrap"
    service = "shop"


class Double(Block):
    name_block = "double"
    service = "shop"
    timeouts = Timeouts(execution=30)


class Fail(Block):
    name_block = "fail"
    service = "shop"


class Book(Block):
    name_block = "book"
    service = "shop"
    compensate = "unbook"


class Echo(Block):
    name_block = "echo"
    service = "shop"


class Inc(Block):
    name_block = "inc"
    service = "shop"


class Fanout(Flow):
    """``inc`` over every element, 100 at a time (the process tests: 1,000 and 10,000)."""

    name_flow = "fanout"
    steps_flow = FlowBuilder(FlowBlock(Map(FlowBlock(Inc), max_concurrency=100, poll=2)))


def _parallel_flow(name: str, join: str, n: int | None = None, failing: bool = False) -> type[Flow]:
    third = FlowBlock(Fail) if failing else FlowBlock(Wrap)
    return type(
        f"Flow_{name}",
        (Flow,),
        {
            "name_flow": name,
            "steps_flow": FlowBuilder(
                FlowBlock(Echo),
                FlowBlock(
                    Parallel(
                        {
                            "up": FlowBlock(Upper),
                            "down": [FlowBlock(Lower), FlowBlock(Wrap)],
                            "third": [third],
                        },
                        join=join,
                        n=n,
                    )
                ),
                FlowBlock(Wrap),
            ),
        },
    )


class Formats(Flow):
    """Echo, three branches joined by ``all``, wrap."""

    name_flow = "formats"
    steps_flow = FlowBuilder(
        FlowBlock(Echo),
        FlowBlock(
            Parallel(
                {"up": FlowBlock(Upper), "down": [FlowBlock(Lower), FlowBlock(Wrap)]}, join="all"
            )
        ),
        FlowBlock(Wrap),
    )


class Doubles(Flow):
    """A map of ``double`` over the input list, five at a time, then ``wrap``."""

    name_flow = "doubles"
    steps_flow = FlowBuilder(
        FlowBlock(Map(FlowBlock(Double), max_concurrency=5, join="all")), FlowBlock(Wrap)
    )


class Bounded(Flow):
    """A map whose step may take 5 seconds at most (its members then are cancelled)."""

    name_flow = "bounded"
    steps_flow = FlowBuilder(FlowBlock(Map(FlowBlock(Double), timeout=5)))


class Again(Flow):
    """A map step with a retry policy of its own: a failed group runs again, as attempt 2."""

    name_flow = "again"
    steps_flow = FlowBuilder(
        FlowBlock(Map(FlowBlock(Double)), retry=RetryPolicy(max_attempts=2, initial_delay=1))
    )


class Nested(Flow):
    """A map whose members each run two branches: groups inside groups."""

    name_flow = "nested"
    steps_flow = FlowBuilder(
        FlowBlock(
            Map(
                FlowBlock(
                    Parallel({"twice": FlowBlock(Double), "wrapped": FlowBlock(Wrap)}, name="pair")
                )
            )
        )
    )


class Collect(Flow):
    """A map of ``double`` joined by ``collect``."""

    name_flow = "collect"
    steps_flow = FlowBuilder(FlowBlock(Map(FlowBlock(Double), join="collect")))


class Bookings(Flow):
    """Book each element (each booking has a compensation); the map fails fast."""

    name_flow = "bookings"
    steps_flow = FlowBuilder(
        FlowBlock(Map([FlowBlock(Book), FlowBlock(Double)], join="fail_fast", max_concurrency=2))
    )


class Retried(Flow):
    """A map whose members retry ``double`` (members that fail after their retries count)."""

    name_flow = "retried"
    retry_policy = RetryPolicy(max_attempts=3, initial_delay=1.0)
    steps_flow = FlowBuilder(FlowBlock(Map(FlowBlock(Double), join="n_of_m", n=2)))


FLOWS: list[type[Flow]] = [
    Formats,
    Fanout,
    Doubles,
    Bounded,
    Again,
    Nested,
    Collect,
    Bookings,
    Retried,
    _parallel_flow("p_all", "all", failing=True),
    _parallel_flow("p_fail_fast", "fail_fast", failing=True),
    _parallel_flow("p_any", "any", failing=True),
    _parallel_flow("p_n_of_m", "n_of_m", n=2, failing=True),
    _parallel_flow("p_n_of_m_3", "n_of_m", n=3, failing=True),
    _parallel_flow("p_collect", "collect", failing=True),
]

orchestrator = Orchestrator(flows=FLOWS, services=[shop])
