"""``GET /metrics`` of ``orch-serv api``: the process's Prometheus metrics (text format).

Like every route but the probes it needs a bearer token (any scope: the figures name flows
and steps, never runs); Prometheus sends one with ``authorization: {credentials: ...}`` in
its scrape config. Including the router turns metrics on for the process
(:func:`orch_serv.observability.metrics.enable`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from orch_serv.api.context import ApiContext
from orch_serv.observability import metrics


def router(ctx: ApiContext) -> APIRouter:
    """The ``/metrics`` route (include it at the application's root)."""
    metrics.enable()
    api = APIRouter(tags=["metrics"])

    @api.get(
        "/metrics",
        summary="Prometheus metrics of this process",
        response_class=Response,
        dependencies=[Depends(ctx.authenticate)],
        responses={200: {"content": {"text/plain": {}}, "description": "Text exposition"}},
    )
    async def scrape() -> Response:
        body, content_type = metrics.exposition()
        return Response(content=body, media_type=content_type)

    return api


__all__ = ["router"]
