"""The HTTP API (``orch-serv api``): FastAPI on uvicorn over the same Redis and RabbitMQ as
the orchestrators. Imported only by the commands that serve it."""

from __future__ import annotations

from orch_serv.api.app import create_app

__all__ = ["create_app"]
