"""orch_serv 0.2's ``orch_serv.orchestrator.orchestrator``: the in-process orchestrators."""

from orch_serv.legacy02.orchestrators import AsyncOrchestrator, SyncOrchestrator

__all__ = ["AsyncOrchestrator", "SyncOrchestrator"]
