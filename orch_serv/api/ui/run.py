"""One run's page: its summary, what it waits for, the error (type, message, traceback),
the statuses reached, the timeline of its attempts and the event history with lineage
bodies; the live fragment its script polls; the cancel and retry forms (``operate``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any, cast

from fastapi import APIRouter, Request

from orch_serv.api.context import ApiContext
from orch_serv.api.tokens import Scope
from orch_serv.api.ui.session import Sessions, UiError, check_csrf, read_form
from orch_serv.api.ui.templating import page, redirect
from orch_serv.api.ui.timeline import attempts, layout
from orch_serv.constants import EventKind
from orch_serv.exceptions import InvalidRunState, RunNotFound, TransportError
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.orchestrator.members import group_views
from orch_serv.orchestrator.waiting import Waiting, waiting_for
from orch_serv.render import run_status
from orch_serv.store.base import RunRecord

#: At most this many events are read for a page (a run that beat for hours has more).
MAX_EVENTS = 2000
MAX_REASON = 500
_DONE_NOTICES = {
    "cancel": "Cancel requested: the run is stopped and its services are told to stop.",
    "retry": "Retry requested: the failed step runs again as a new attempt.",
}


def traceback_of(error: ErrorInfo | None) -> str | None:
    """The traceback a handler's error carries in its details, if any (text or lines)."""
    details = error.details if error is not None else None
    value = details.get("traceback") if isinstance(details, dict) else None
    if isinstance(value, list):
        return "".join(str(line) for line in value)
    return value if isinstance(value, str) and value else None


def other_details(error: ErrorInfo | None) -> dict[str, Any] | None:
    """The error's details but its traceback (shown apart)."""
    details = error.details if error is not None else None
    if not isinstance(details, dict):
        return None
    rest = {k: v for k, v in details.items() if k != "traceback"}
    return rest or None


def router(ctx: ApiContext, sessions: Sessions) -> APIRouter:
    """``GET /runs/{id}``, ``GET /runs/{id}/live``, ``POST /runs/{id}/cancel|retry``."""
    api = APIRouter()

    async def waiting(record: RunRecord) -> tuple[Waiting | None, str | None]:
        try:
            store, transport = await ctx.backends.store(), await ctx.backends.transport()
            return await waiting_for(record, store, transport), None
        except TransportError as exc:
            return None, f"RabbitMQ cannot be asked what the run waits for: {exc}"

    async def values(run_id: str) -> dict[str, Any]:
        store = await ctx.backends.store()
        record = await store.get_run(run_id)
        if record is None:
            raise UiError(404, f"no run has the id {run_id!r}", title="Run not found")
        count = await cast(Awaitable[int], store.redis.llen(store.keys.events(run_id)))
        events = await store.events_after(run_id, 0, MAX_EVENTS)
        waits, waits_note = await waiting(record)
        groups = await group_views(store, record, events)
        now = time.time()
        return {
            "record": record,
            "oslo_status": run_status(record),
            "events": events,
            "event_count": count,
            "timeline": layout(attempts(events, record), record, now),
            "waiting": waits,
            "waiting_note": waits_note,
            "groups": groups,
            "traceback": traceback_of(record.error),
            "details": other_details(record.error),
            "traceback_of": traceback_of,
            "statuses": sorted(record.statuses),
            "status_events": [e for e in events if e.kind is EventKind.STATUS],
            "title": f"Run {run_id}",
        }

    @api.get("/runs/{run_id}", include_in_schema=False)
    async def show(request: Request, run_id: str, done: str | None = None) -> Any:
        viewer = await sessions.require(request)
        found = await values(run_id)
        found["notice"] = _DONE_NOTICES.get(done or "")
        found["can_operate"] = viewer.can_operate
        return page(request, "run.html", **found)

    @api.get("/runs/{run_id}/live", include_in_schema=False)
    async def live(request: Request, run_id: str) -> Any:
        viewer = await sessions.require(request)
        found = await values(run_id)
        found["can_operate"] = viewer.can_operate
        return page(request, "_run_live.html", **found)

    async def checked(request: Request) -> dict[str, str]:
        viewer = await sessions.require(request, Scope.operate)
        form = await read_form(request)
        check_csrf(request, viewer.csrf, form)
        return form

    @api.post("/runs/{run_id}/cancel", include_in_schema=False)
    async def cancel(request: Request, run_id: str) -> Any:
        form = await checked(request)
        reason = form.get("reason", "").strip()
        if len(reason) > MAX_REASON:
            raise UiError(400, f"the reason is longer than {MAX_REASON} characters")
        compensate = form.get("compensate", "") in ("on", "1", "true", "yes")
        client = await ctx.backends.client()
        try:
            await client.cancel(
                run_id, compensate=compensate, reason=reason or "cancelled from the dashboard"
            )
        except RunNotFound:
            raise UiError(404, f"no run has the id {run_id!r}", title="Run not found") from None
        except InvalidRunState as exc:
            raise UiError(409, str(exc), title="The run cannot be cancelled") from None
        return redirect(request, f"/runs/{run_id}?done=cancel")

    @api.post("/runs/{run_id}/retry", include_in_schema=False)
    async def retry(request: Request, run_id: str) -> Any:
        await checked(request)
        client = await ctx.backends.client()
        try:
            await client.retry(run_id)
        except RunNotFound:
            raise UiError(404, f"no run has the id {run_id!r}", title="Run not found") from None
        except InvalidRunState as exc:
            raise UiError(409, str(exc), title="The run cannot be retried") from None
        return redirect(request, f"/runs/{run_id}?done=retry")

    return api


__all__ = ["MAX_EVENTS", "other_details", "router", "traceback_of"]
