"""The ``orch-serv api`` application: the native API under ``/v1``, the probes, and the
compatibility surfaces mounted at their paths (``/statusek``, ``/status-api``).

It needs no application code: flows come from the definitions the orchestrators publish to
Redis; runs are started by publishing START messages as any client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from orch_serv import __version__
from orch_serv.api import health, problems
from orch_serv.api.context import ApiContext, AuthError, Backends
from orch_serv.api.limits import BodyLimit
from orch_serv.settings import Settings
from orch_serv.transport.base import Transport

if TYPE_CHECKING:
    from orch_serv.store.redis import RedisRunStore

log = structlog.get_logger("orch_serv.api")

DESCRIPTION = """\
The HTTP face of orch_serv: start, inspect, cancel and retry runs, follow their events,
read flow definitions and handle dead letters.

Every endpoint but `/healthz` needs `Authorization: Bearer <token>` (tokens come from
`orch-serv token create NAME --scope ...`), unless the server was started with
`--insecure-no-auth`. Errors are `application/problem+json` (RFC 9457).

The Statusek surface is mounted at `/statusek` (its own docs at `/statusek/docs`), the
Oslo status-api surface at `/status-api`, the StateService surface at `/stateservice`, and
the operators' dashboard at `/ui`.
"""


def install_auth_errors(app: FastAPI) -> None:
    """Render :class:`AuthError` as a problem document (the native API's shape)."""

    async def on_auth(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        problem = problems.Problem(exc.status, exc.detail, headers=exc.headers)
        return problems.problem_response(problem, request)

    app.add_exception_handler(AuthError, on_auth)


def create_app(
    settings: Settings,
    *,
    auth: bool = True,
    store: RedisRunStore | None = None,
    transport: Transport | None = None,
) -> FastAPI:
    """The API application. ``store``/``transport`` given (``orch-serv dev``) are shared and
    left open; otherwise the backends are opened on first use and closed at shutdown."""
    ctx = ApiContext(settings, Backends(settings, store, transport), auth=auth)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not auth:
            log.warning(
                "api.insecure",
                message="AUTHENTICATION IS OFF (--insecure-no-auth): anyone who reaches this "
                "port can start, cancel and read every run. Local development only.",
            )
        try:
            yield
        finally:
            await ctx.backends.close()

    app = FastAPI(
        title="orch_serv",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    problems.install(app)
    install_auth_errors(app)
    app.include_router(health.router(ctx))
    from orch_serv.api import metrics_route

    app.include_router(metrics_route.router(ctx))

    from orch_serv.api import models_v1, oslo, stateservice, statusek, ui, v1

    # Every /v1 route needs a valid token at least (each also checks its own scope).
    app.include_router(v1.router(ctx), prefix="/v1", dependencies=[Depends(ctx.authenticate)])
    app.include_router(
        models_v1.router(ctx), prefix="/v1", dependencies=[Depends(ctx.authenticate)]
    )
    app.mount("/statusek", statusek.build(ctx))
    app.mount("/status-api", oslo.build(ctx))
    app.mount("/stateservice", stateservice.build(ctx))
    app.mount("/ui", ui.build(ctx))  # the operators' dashboard
    if settings.api_stateservice_at_root:
        stateservice.mount_at_root(app, ctx)  # `/state` only, ahead of a mount at the root
    if settings.api_statusek_at_root:
        app.mount("/", statusek.build(ctx))  # last: a mount at the root takes every other path
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    return app


__all__ = ["create_app"]
