"""The runs page: filters (flow, state, key, creation time), search by id, counts per state,
server-side paging, and the fragment its script polls for live updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request

from orch_serv.api.context import ApiContext
from orch_serv.api.ui.filters import PAGE_SIZES, RunFilter, encode_cursor, state_counts
from orch_serv.api.ui.session import Sessions
from orch_serv.api.ui.templating import page, redirect
from orch_serv.constants import RunState
from orch_serv.render import run_status
from orch_serv.store.base import RunRecord


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of the runs page: its rows, where the next page starts, counts, a notice."""

    records: list[RunRecord]
    next_cursor: str | None
    counts: dict[RunState, str]
    notice: str | None


async def listing(ctx: ApiContext, wanted: RunFilter) -> Listing:
    """The rows, cursor and counts ``wanted`` asks for (at most one page of runs is read)."""
    store = await ctx.backends.store()
    counts = await state_counts(store, wanted.flow)
    if wanted.key is not None:
        run_id = await store.find_by_key(wanted.key)
        record = await store.get_run(run_id) if run_id else None
        if record is None:
            return Listing([], None, counts, f"No run was started with the key {wanted.key!r}.")
        return Listing([record], None, counts, f"The run started with the key {wanted.key!r}.")
    found = await store.page_runs(wanted.query(), wanted.limit)
    cursor = encode_cursor(found.after) if found.after is not None else None
    notice = None
    if not found.records and cursor is not None:
        notice = "No match among the runs looked at for this page: go on to the next page."
    return Listing(found.records, cursor, counts, notice)


def router(ctx: ApiContext, sessions: Sessions) -> APIRouter:
    """``GET /runs`` and ``GET /runs/live`` (the polled fragment)."""
    api = APIRouter()

    async def values(request: Request, wanted: RunFilter) -> dict[str, Any]:
        result = await listing(ctx, wanted)
        store = await ctx.backends.store()
        return {
            "filter": wanted,
            "records": result.records,
            "next_cursor": result.next_cursor,
            "counts": result.counts,
            "notice": result.notice,
            "states": list(RunState),
            "flows": sorted(await store.spec_names()),
            "page_sizes": PAGE_SIZES,
            "run_status": run_status,
            "title": "Runs",
        }

    @api.get("/runs", include_in_schema=False)
    async def runs(request: Request) -> Any:
        await sessions.require(request)
        wanted = RunFilter.parse(request.query_params)
        if wanted.run_id is not None:
            store = await ctx.backends.store()
            if await store.get_run(wanted.run_id) is not None:
                return redirect(request, f"/runs/{wanted.run_id}")
            found = await values(request, wanted)
            found["notice"] = f"No run has the id {wanted.run_id!r}."
            return page(request, "runs.html", status=404, **found)
        return page(request, "runs.html", **await values(request, wanted))

    @api.get("/runs/live", include_in_schema=False)
    async def live(request: Request) -> Any:
        await sessions.require(request)
        wanted = RunFilter.parse(request.query_params)
        return page(request, "_runs_live.html", **await values(request, wanted))

    return api


__all__ = ["Listing", "listing", "router"]
