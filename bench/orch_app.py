"""The flow the benchmark runs on orch_serv: three trivial steps on one service."""

from __future__ import annotations

from typing import Any

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator, Service

service = Service("bench")


@service.command("step1")
async def step1(body: dict[str, Any]) -> dict[str, Any]:
    """Trivial work."""
    return {"n": body["n"] + 1}


@service.command("step2")
async def step2(body: dict[str, Any]) -> dict[str, Any]:
    """Trivial work."""
    return {"n": body["n"] + 1}


@service.command("step3")
async def step3(body: dict[str, Any]) -> dict[str, Any]:
    """Trivial work."""
    return {"n": body["n"] + 1}


def _block(name: str) -> type[Block]:
    return type(name.title(), (Block,), {"name_block": name, "service": "bench"})


class Three(Flow):
    name_flow = "three"
    steps_flow = FlowBuilder(*(FlowBlock(_block(f"step{i}")) for i in (1, 2, 3)))


orchestrator = Orchestrator(flows=[Three], services=[service])
