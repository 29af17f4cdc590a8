"""The orchestrator: definitions, the engine that advances runs, and the client."""

from orch_serv.orchestrator.app import Orchestrator, Running
from orch_serv.orchestrator.client import Client
from orch_serv.orchestrator.engine import Engine

__all__ = ["Client", "Engine", "Orchestrator", "Running"]
