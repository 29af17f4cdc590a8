"""The endpoints of the Oslo status-api surface (mounted at ``/status-api``).

Scopes: ``read`` for every GET, ``start`` to create a trace, ``operate`` to append an
event. The token is checked before anything is read or looked up (401, then 403, then
400 for a bad body, then 404).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from orch_serv.api.context import ApiContext
from orch_serv.api.limits import BodyTooLarge
from orch_serv.api.oslo_errors import OsloError
from orch_serv.api.oslo_items import FINISHED, item_of, items, summary
from orch_serv.api.oslo_models import (
    Message,
    PathMatch,
    Summary,
    TraceCreate,
    TraceCreated,
    TraceEventIn,
    TraceItem,
    parse_json,
    validated,
)
from orch_serv.api.oslo_write import new_trace_id, posted
from orch_serv.api.tokens import Scope, TokenInfo
from orch_serv.store.base import Outcome
from orch_serv.store.traces import NewTrace, Traces, is_trace

#: Base64, standard or URL-safe, padded or not (what :func:`decode_path` accepts).
BASE64 = r"^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$"
#: How many fresh ids a create tries before giving up (a uuid4 collision: never).
_CREATE_TRIES = 3


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    reasons = {
        400: "Malformed JSON, a missing or mistyped field, or invalid base64",
        401: "No bearer token, or not a valid one",
        403: "The token lacks the scope",
        404: "No such trace",
        409: "A FINISHED event for a run that is not a trace",
        413: "The body is too large",
        503: "Redis does not answer",
    }
    return {c: {"model": Message, "description": reasons[c]} for c in codes}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def decode_path(encoded: str) -> str:
    """The S3 path of a status-from-path request: standard base64 (URL-safe and unpadded
    base64 are accepted too), decoded as UTF-8 ignoring bad bytes as the seed did; invalid
    base64 is :class:`OsloError` 400 (the seed crashed into a 502)."""
    text = encoded.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        shown = encoded if len(encoded) <= 100 else encoded[:100] + "..."
        raise OsloError(400, f"Invalid base64 path: {shown}") from None
    return raw.decode("utf-8", errors="ignore")


def router(ctx: ApiContext) -> APIRouter:
    """The surface's routes over ``ctx``."""
    api = APIRouter()
    # as defaults: with postponed annotations FastAPI cannot resolve a local Annotated alias
    reader = Depends(ctx.require(Scope.read))
    starter = Depends(ctx.require(Scope.start))
    operator = Depends(ctx.require(Scope.operate))

    async def read_json(request: Request) -> dict[str, Any]:
        try:
            raw = await request.body()
        except BodyTooLarge:
            limit = ctx.settings.api_max_body_bytes
            raise OsloError(413, f"The request body is larger than {limit} bytes") from None
        return parse_json(raw)

    @api.post(
        "/status",
        summary="Create a trace",
        responses={200: {"model": TraceCreated}, **_errors(400, 401, 403, 413, 503)},
        openapi_extra=_body(TraceCreate),
    )
    async def create_status(request: Request, _: TokenInfo = starter) -> JSONResponse:
        """A new trace (a run of kind ``trace``) with its first event, STARTED / OK."""
        body = validated(TraceCreate, await read_json(request))
        traces = Traces(await ctx.backends.store())
        for _try in range(_CREATE_TRIES):
            new = posted(body)
            trace_id = new_trace_id(body.domain_id)
            trace = NewTrace(trace_id, body.domain, new.item, new.event, new.paths)
            if await traces.create(trace):
                return JSONResponse({"trace_id": trace_id})
        raise OsloError(500, "Could not create status: no free trace id")

    @api.get(
        "/status/{trace_id}",
        summary="Every event of a trace",
        responses={200: {"model": list[TraceItem]}, **_errors(401, 403, 404, 503)},
    )
    async def get_status(trace_id: str, _: TokenInfo = reader) -> JSONResponse:
        """The trace's (the run's) events as items, all of them, by ``start_time``."""
        store = await ctx.backends.store()
        record = await store.get_run(trace_id)
        if record is None:
            raise OsloError(404, f"Could not find item: {trace_id}")
        return JSONResponse(items(record, await store.get_events(trace_id)))

    @api.get(
        "/status/{trace_id}/summary",
        summary="Whether a trace is done, and how it went",
        responses={200: {"model": Summary}, **_errors(401, 403, 404, 503)},
    )
    async def get_summary(trace_id: str, _: TokenInfo = reader) -> JSONResponse:
        """The okdata CLI's status row, computed here: ``done``, ``trace_status``,
        ``trace_event_status``, ``errors``, and the legacy ``id``, ``run_status``,
        ``status``."""
        store = await ctx.backends.store()
        record = await store.get_run(trace_id)
        if record is None:
            raise OsloError(404, f"Could not find item: {trace_id}")
        events = await store.get_events(trace_id)
        recorded = [item_of(record, e) for e in events]
        return JSONResponse(summary(record, recorded))

    @api.post(
        "/status/{trace_id}",
        summary="Append an event to a trace",
        responses={200: {"model": TraceItem}, **_errors(400, 401, 403, 404, 409, 413, 503)},
        openapi_extra=_body(TraceEventIn),
    )
    async def update_status(
        trace_id: str, request: Request, _: TokenInfo = operator
    ) -> JSONResponse:
        """One more event; ``trace_status`` FINISHED ends a trace, SUCCEEDED if the event
        is OK and FAILED if it is FAILED (a trace that has ended keeps its end)."""
        body = validated(TraceEventIn, await read_json(request))
        store = await ctx.backends.store()
        missing = OsloError(404, f"Could not find the requested item to update: {trace_id}")
        record = await store.get_run(trace_id)
        if record is None:
            raise missing
        new = posted(body)
        if new.trace_status == FINISHED:
            if not is_trace(record.kind):
                raise OsloError(
                    409,
                    f"{trace_id} is a {record.kind} run: it finishes when its flow does; "
                    "post STARTED or CONTINUE events to it",
                )
            outcome = await Traces(store).finish(
                trace_id,
                new.event,
                failed=new.failed,
                error=new.error() if new.failed else None,
                paths=new.paths,
            )
            if outcome is Outcome.NOT_FOUND:
                raise missing
            if outcome is Outcome.APPLIED:
                return JSONResponse(new.answer(trace_id))
        if await store.record_event(trace_id, new.event, None, paths=new.paths) is None:
            raise missing
        return JSONResponse(new.answer(trace_id))

    @api.get(
        "/status-from-path/{s3_path:path}",
        summary="The trace of a file path",
        responses={200: {"model": PathMatch}, **_errors(400, 401, 403, 404, 503)},
    )
    async def status_from_path(
        s3_path: str = Path(
            pattern=BASE64,
            min_length=1,
            description="The S3 path in base64 (standard; URL-safe and unpadded accepted).",
        ),
        _: TokenInfo = reader,
    ) -> JSONResponse:
        """The run that recorded the path (base64) last, as an ``s3_path`` or a lineage
        file, else the run started with it as its key."""
        path = decode_path(s3_path)
        store = await ctx.backends.store()
        run_id = await Traces(store).find_by_path(path) if path else None
        if run_id is None:
            raise OsloError(404, "Could not find item")
        return JSONResponse({"id": run_id, "trace_id": run_id})

    return api


__all__ = ["decode_path", "router"]
