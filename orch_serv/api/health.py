"""``/healthz`` (the process answers) and ``/readyz`` (Redis and RabbitMQ answer).

Both answer without a token, because liveness and readiness probes (Docker, Kubernetes)
cannot carry one; neither reveals anything about runs. ``/readyz`` without a token says only
``ok`` or ``unavailable`` per backend; with a ``read`` token it also gives the reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orch_serv.api.context import ApiContext, AuthError
from orch_serv.api.tokens import Scope


def router(ctx: ApiContext) -> APIRouter:
    """The two probes."""
    api = APIRouter(tags=["health"])

    @api.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get(
        "/readyz",
        summary="Redis and RabbitMQ answer",
        responses={503: {"description": "A backend does not answer; the body says which"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = await ctx.backends.readiness()
        ready = all(v == "ok" for v in checks.values())
        if not await _may_read(ctx, request, checks):
            checks = {k: "ok" if v == "ok" else "unavailable" for k, v in checks.items()}
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    return api


async def _may_read(ctx: ApiContext, request: Request, checks: dict[str, str]) -> bool:
    """True when the caller shows a valid ``read`` token (tokens live in Redis: without it,
    nobody gets the details but a server without authentication)."""
    if not ctx.auth:
        return True
    if checks.get("redis") != "ok" or "authorization" not in request.headers:
        return False
    try:
        return (await ctx.authenticate(request)).allows(Scope.read)
    except AuthError:
        return False


__all__ = ["router"]
