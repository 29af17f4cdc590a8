"""The application under chaos: one service, ``chaos``, and a 3-step flow, ``chaos3``.

Each step adds one to ``n`` and records which step ran, so a succeeded run's result is
``{"n": input + 3, "path": [1, 2, 3]}``; the handlers are cheap and idempotent (a redelivered
command gives the same answer)."""

from __future__ import annotations

from typing import Any

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator, Service

SERVICE = "chaos"
FLOW = "chaos3"
STEPS = 3

service = Service(SERVICE)


def _advance(body: dict[str, Any], step: int) -> dict[str, Any]:
    return {"n": int(body["n"]) + 1, "path": [*body.get("path", []), step]}


@service.command("step1")
async def step1(body: dict[str, Any]) -> dict[str, Any]:
    """Step 1 of 3."""
    return _advance(body, 1)


@service.command("step2")
async def step2(body: dict[str, Any]) -> dict[str, Any]:
    """Step 2 of 3."""
    return _advance(body, 2)


@service.command("step3")
async def step3(body: dict[str, Any]) -> dict[str, Any]:
    """Step 3 of 3."""
    return _advance(body, 3)


def _block(name: str) -> type[Block]:
    return type(name.title(), (Block,), {"name_block": name, "service": SERVICE})


class Chaos3(Flow):
    """step1 -> step2 -> step3 on the ``chaos`` service."""

    name_flow = FLOW
    steps_flow = FlowBuilder(*(FlowBlock(_block(f"step{i}")) for i in range(1, STEPS + 1)))


orchestrator = Orchestrator(flows=[Chaos3], services=[service])


def expected_result(n: int) -> dict[str, Any]:
    """What a succeeded run started with ``{"n": n}`` must return."""
    return {"n": n + STEPS, "path": list(range(1, STEPS + 1))}
