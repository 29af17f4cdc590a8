"""The flows pages: every registered flow and block drawn as a graph, and one flow with its
versions and per-step figures over a chosen window."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from orch_serv.api.context import ApiContext
from orch_serv.api.ui import figures, graph
from orch_serv.api.ui.session import Sessions, UiError
from orch_serv.api.ui.templating import page

KINDS = ("flow", "block")


def router(ctx: ApiContext, sessions: Sessions) -> APIRouter:
    """``GET /flows`` and ``GET /flows/{kind}/{name}``."""
    api = APIRouter()

    @api.get("/flows", include_in_schema=False)
    async def flows(request: Request) -> Any:
        await sessions.require(request)
        store = await ctx.backends.store()
        specs = sorted(await store.list_specs(), key=lambda s: (s.kind, s.name))
        drawn = [(spec, graph.layout(spec)) for spec in specs]
        return page(request, "flows.html", drawn=drawn, title="Flows")

    @api.get("/flows/{kind}/{name}", include_in_schema=False)
    async def flow(
        request: Request,
        kind: str,
        name: str,
        version: str | None = None,
        window: str | None = None,
    ) -> Any:
        await sessions.require(request)
        if kind not in KINDS:
            raise UiError(404, f"unknown kind {kind!r}: flow or block", title="Not found")
        chosen = window or figures.DEFAULT_WINDOW
        if chosen not in figures.WINDOWS:
            known = ", ".join(figures.WINDOWS)
            raise UiError(400, f"unknown window {chosen!r}; known: {known}")
        store = await ctx.backends.store()
        spec = await store.get_spec(kind, name, version or None)
        if spec is None:
            what = f"{kind} {name!r}" + (f" version {version!r}" if version else "")
            raise UiError(404, f"no {what} is registered", title="Flow not found")
        versions = await store.spec_versions(kind, name)
        current = await store.get_spec(kind, name)
        found = await figures.compute(store, spec, time.time(), figures.WINDOWS[chosen])
        return page(
            request,
            "flow.html",
            spec=spec,
            current_version=current.version if current else None,
            versions=versions,
            drawing=graph.layout(spec),
            figures=found,
            window=chosen,
            windows=list(figures.WINDOWS),
            max_runs=figures.MAX_RUNS,
            title=f"{kind.capitalize()} {name}",
        )

    return api


__all__ = ["router"]
