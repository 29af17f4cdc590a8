"""The native API, versioned under ``/v1``: runs (start, get, list, cancel, retry), their
events (a page, or a live Server-Sent Events stream), flow definitions and versions, and
the dead-letter queue. Every error is a problem document (RFC 9457)."""

from __future__ import annotations

from fastapi import APIRouter

from orch_serv.api.context import ApiContext
from orch_serv.api.v1 import deadletters, events, flows, runs


def router(ctx: ApiContext) -> APIRouter:
    """Every ``/v1`` route."""
    api = APIRouter()
    for part in (runs, events, flows, deadletters):
        api.include_router(part.router(ctx))
    return api


__all__ = ["router"]
