"""The Oslo status-api surface (``/status-api``): traces are runs, their events the runs'
events (see ``docs/api.md``, "Oslo status-api surface"). Routes in ``oslo_routes``, bodies
in ``oslo_models``, the item mapping in ``oslo_items``, the error shape in ``oslo_errors``."""

from __future__ import annotations

from fastapi import FastAPI

from orch_serv import __version__
from orch_serv.api import oslo_errors, oslo_routes
from orch_serv.api.context import ApiContext

DESCRIPTION = """\
The Oslo dataplatform status-api, served over orch_serv's runs: a trace is a run (its id is
the `trace_id`) and its events are the run's events. Errors are `{"message": "..."}`.

Scopes: `read` for the GETs, `start` to create a trace, `operate` to append an event.
"""


def build(ctx: ApiContext) -> FastAPI:
    """The Oslo status-api application."""
    app = FastAPI(
        title="orch_serv: Oslo status-api surface",
        version=__version__,
        description=DESCRIPTION,
    )
    routes = oslo_routes.router(ctx)
    oslo_errors.install(app, routes.routes)
    app.include_router(routes)
    return app


__all__ = ["build"]
