"""The orchestrator: definitions, the engine that advances runs, and the client; and
orch_serv 0.2's in-process blocks, flows and orchestrators at their 0.2 path."""

from orch_serv.flow.flow import FlowBlock, FlowBuilder
from orch_serv.legacy02.blocks import AsyncBlock, SyncBlock
from orch_serv.legacy02.flows import AsyncFlow, SyncFlow
from orch_serv.legacy02.orchestrators import AsyncOrchestrator, SyncOrchestrator
from orch_serv.orchestrator.app import Orchestrator, Running
from orch_serv.orchestrator.client import Client
from orch_serv.orchestrator.engine import Engine

__all__ = [
    "AsyncBlock",
    "AsyncFlow",
    "AsyncOrchestrator",
    "Client",
    "Engine",
    "FlowBlock",
    "FlowBuilder",
    "Orchestrator",
    "Running",
    "SyncBlock",
    "SyncFlow",
    "SyncOrchestrator",
]
