"""``/v1/runs``: start a run, get one, list them, cancel, retry and signal it.

A start goes through :class:`~orch_serv.orchestrator.client.Client`, as the CLI's does: the
flow (or block) is resolved first, so an unknown name is a 404 listing the known ones
before RabbitMQ is asked anything; a reused idempotency key answers the first run (200,
not 201) or, held by another flow's run, a 409.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Depends, Path, Query

from orch_serv import render
from orch_serv.api.context import ApiContext
from orch_serv.api.problems import Problem
from orch_serv.api.tokens import Scope
from orch_serv.api.v1.auth import auth_first
from orch_serv.api.v1.cursor import decode_cursor, encode_cursor
from orch_serv.api.v1.errors import problems
from orch_serv.api.v1.models import (
    MAX_PAGE,
    CancelRequest,
    RunList,
    RunStatus,
    SignalRequest,
    StartRequest,
)
from orch_serv.api.v1.respond import json_response, waiting
from orch_serv.constants import RunState
from orch_serv.exceptions import FlowNotFound
from orch_serv.orchestrator.client import Client
from orch_serv.orchestrator.members import group_views
from orch_serv.store.base import CreateResult, NewRun, RunRecord, RunStore
from orch_serv.store.redis_reads import RunQuery

RunId = Annotated[str, Path(min_length=1, max_length=512, description="Run id.")]
SignalName = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_.\-]{1,128}$",
        description="Signal name: 1-128 letters, digits, '_', '.' or '-'.",
    ),
]


class _Witness:
    """The run store, remembering whether ``create_run`` created the run (a start answers
    201 for a new run, 200 for the one its idempotency key already named)."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self.created = False

    async def create_run(self, new: NewRun) -> CreateResult:
        result = await self._store.create_run(new)
        self.created = result.created
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _timestamp(moment: datetime | None) -> float | None:
    """Unix time of ``moment`` (one without a time zone is UTC)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def _resolve(client: Client, body: StartRequest) -> None:
    """Refuse an unknown flow or block: 404 with the registered names (never a default)."""
    try:
        await client.resolve(body.flow, body.block)
    except FlowNotFound as exc:
        kind = "block" if body.block is not None else "flow"
        known = sorted(s.name for s in await client.store.list_specs() if s.kind == kind)
        raise Problem(404, str(exc), title="Flow not found", known=known) from exc


def router(ctx: ApiContext) -> APIRouter:
    """The run endpoints."""
    api = APIRouter(tags=["runs"], route_class=auth_first(ctx))
    read = [Depends(ctx.require(Scope.read))]
    operate = [Depends(ctx.require(Scope.operate))]

    @api.post(
        "/runs",
        summary="Start a run of a flow or a single block",
        status_code=201,
        response_model=RunStatus,
        dependencies=[Depends(ctx.require(Scope.start))],
        responses={
            200: {"model": RunStatus, "description": "The run the idempotency key names"},
            201: {"description": "A new run"},
            **problems(400, 404, 409, 413),
        },
    )
    async def start_run(body: StartRequest) -> Any:
        store = await ctx.backends.store()
        witness = _Witness(store)
        limit = ctx.settings.max_message_bytes
        client = Client(None, cast(RunStore, witness), max_message_bytes=limit)
        await _resolve(client, body)
        client.transport = await ctx.backends.transport()
        run_id = await client.start(
            body.flow, body.body, key=body.key, target=body.block, deadline=body.deadline
        )
        record = await client.get(run_id)
        return json_response(
            render.run_json(record),
            201 if witness.created else 200,
            {"Location": f"/v1/runs/{run_id}"},
        )

    @api.get(
        "/runs",
        summary="List runs (newest first, cursor pagination)",
        response_model=RunList,
        dependencies=read,
        responses=problems(400),
    )
    async def list_runs(
        flow: Annotated[str | None, Query(min_length=1, description="Runs of this flow")] = None,
        state: Annotated[RunState | None, Query(description="Runs in this state")] = None,
        key: Annotated[
            str | None, Query(min_length=1, description="The run started with this key")
        ] = None,
        created_since: Annotated[
            datetime | None, Query(description="Created at or after (ISO 8601)")
        ] = None,
        created_until: Annotated[
            datetime | None, Query(description="Created at or before (ISO 8601)")
        ] = None,
        cursor: Annotated[
            str | None, Query(max_length=2048, description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page")] = 50,
    ) -> Any:
        order = f"state:{state.value}" if state is not None and flow is None else "created"
        after = decode_cursor(cursor, order) if cursor is not None else None
        query = RunQuery(flow, state, _timestamp(created_since), _timestamp(created_until), after)
        if query.since is not None and query.until is not None and query.since > query.until:
            raise Problem(422, "created_since is after created_until", title="Invalid request")
        store = await ctx.backends.store()
        if key is not None:
            found = await store.find_by_key(key)
            record = await store.get_run(found) if found and after is None else None
            records = [record] if record is not None and query.matches(record) else []
            return json_response(
                {"runs": [render.run_json(r) for r in records], "next_cursor": None}
            )
        page = await store.page_runs(query, limit)
        next_cursor = encode_cursor(order, page.after) if page.after is not None else None
        return json_response(
            {"runs": [render.run_json(r) for r in page.records], "next_cursor": next_cursor}
        )

    @api.get(
        "/runs/{run_id}",
        summary="A run's status (as `orch-serv status --format json`)",
        response_model=RunStatus,
        dependencies=read,
        responses=problems(404),
    )
    async def get_run(run_id: RunId) -> Any:
        record = await _get(ctx, run_id)
        groups = await group_views(await ctx.backends.store(), record)
        return json_response(render.run_json(record, await waiting(ctx, record), groups))

    @api.post(
        "/runs/{run_id}/cancel",
        summary="Cancel a run (optionally compensating its completed steps)",
        response_model=RunStatus,
        dependencies=operate,
        responses=problems(400, 404, 409),
    )
    async def cancel_run(
        run_id: RunId, body: Annotated[CancelRequest | None, Body()] = None
    ) -> Any:
        request = body or CancelRequest()
        await _get(ctx, run_id)
        client = await ctx.backends.client()
        record = await client.cancel(run_id, compensate=request.compensate, reason=request.reason)
        return json_response(render.run_json(record))

    @api.post(
        "/runs/{run_id}/retry",
        summary="Resume a FAILED or TIMED_OUT run from the step that failed",
        response_model=RunStatus,
        dependencies=operate,
        responses=problems(404, 409),
    )
    async def retry_run(run_id: RunId) -> Any:
        await _get(ctx, run_id)
        record = await (await ctx.backends.client()).retry(run_id)
        return json_response(render.run_json(record))

    @api.post(
        "/runs/{run_id}/signals/{name}",
        summary="Send a signal to a run (a wait step waiting for it moves on)",
        response_model=RunStatus,
        dependencies=operate,
        responses=problems(400, 404, 409, 413),
    )
    async def signal_run(
        run_id: RunId, name: SignalName, body: Annotated[SignalRequest | None, Body()] = None
    ) -> Any:
        request = body or SignalRequest()
        limit = ctx.settings.max_message_bytes
        client = Client(None, await ctx.backends.store(), max_message_bytes=limit)
        record = await client.signal(run_id, name, request.data, component="api")
        return json_response(render.run_json(record))

    return api


async def _get(ctx: ApiContext, run_id: str) -> RunRecord:
    """The run (404 when there is none), read from Redis alone."""
    return await Client(None, await ctx.backends.store()).get(run_id)


__all__ = ["router"]
