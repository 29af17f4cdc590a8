"""A module of 0.2 flows and blocks, for loading an orchestrator from modules."""

from __future__ import annotations

from pydantic import BaseModel

from orch_serv.orchestrator import FlowBlock, FlowBuilder, SyncBlock, SyncFlow
from tests.legacy02.models import Msg

CALLS: list[str] = []


class Helper(BaseModel):
    """Not a flow: a module may hold other classes (0.2 raised TypeError for them)."""


class Zeta(SyncBlock):
    name_block = "zeta"

    def process(self, message: Msg) -> Msg:
        CALLS.append("zeta")
        return message


class Alpha(SyncBlock):
    name_block = "alpha"

    def process(self, message: Msg) -> Msg:
        CALLS.append("alpha")
        return message


class ZFlow(SyncFlow):
    name_flow = "z flow"
    steps_flow = FlowBuilder(FlowBlock(Zeta))


class AFlow(SyncFlow):
    name_flow = "a flow"
    steps_flow = FlowBuilder(FlowBlock(Alpha), FlowBlock(Zeta))
