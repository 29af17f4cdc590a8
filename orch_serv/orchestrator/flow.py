"""orch_serv 0.2's ``orch_serv.orchestrator.flow``: flows of in-process blocks.

``FlowBlock`` and ``FlowBuilder`` are the distributed model's classes (``orch_serv.flow``);
given a 0.2 block they build 0.2 flows (see docs/architecture.md, "orch_serv 0.2 names")."""

from orch_serv.flow.flow import FlowBlock, FlowBuilder
from orch_serv.legacy02.flows import AsyncFlow, Flow, SyncFlow

__all__ = ["AsyncFlow", "Flow", "FlowBlock", "FlowBuilder", "SyncFlow"]
