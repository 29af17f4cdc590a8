"""A run's events: a page after a cursor (``?after=SEQ``), and a live Server-Sent Events
stream that follows the run until it ends.

The stream polls the run's event list (one LRANGE from the cursor, then one read of the
run) rather than subscribing to the store's ``finished`` channel: that channel announces
only the end of a run, not the events before it, and a subscription would hold a Redis
connection per open stream. The poll interval starts at ``POLL_MIN`` after each event and
doubles while nothing happens, up to ``POLL_MAX``: an active run is followed closely, an
idle stream costs two cheap reads a second. The stream resumes after ``Last-Event-ID`` (an
event's ``id`` is its ``seq``); a comment line keeps an idle connection open every
``api_sse_keepalive_seconds``; once the run is finished it sends the events left, then an
``end`` event carrying the run's final status, and closes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from orch_serv import render
from orch_serv.api.context import ApiContext
from orch_serv.api.problems import Problem
from orch_serv.api.tokens import Scope
from orch_serv.api.v1.errors import problems
from orch_serv.api.v1.models import MAX_PAGE, EventList
from orch_serv.api.v1.respond import json_response
from orch_serv.api.v1.runs import RunId
from orch_serv.exceptions import RunNotFound, StoreError
from orch_serv.store.base import Event
from orch_serv.store.redis import RedisRunStore

#: Shortest and longest pause between two polls of an open stream (seconds).
POLL_MIN, POLL_MAX = 0.05, 1.0
#: Events read per poll.
BATCH = 200
#: Largest event cursor accepted (a run has far fewer events).
MAX_SEQ = 2**31 - 1

After = Annotated[
    int, Query(ge=0, le=MAX_SEQ, description="Events with a seq above this (0: from the start)")
]


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response."""

    media_type = "text/event-stream"


def _frame(event: Event) -> bytes:
    """One run event as an SSE message: its seq as ``id``, its JSON document as ``data``."""
    data = orjson.dumps(render.event_json(event), option=orjson.OPT_NON_STR_KEYS)
    return b"id: %d\ndata: %s\n\n" % (event.seq, data)


def _named(name: str, document: Any) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(document))


def _resume_point(after: int, last_event_id: str | None) -> int:
    """Where a stream starts: after ``Last-Event-ID`` when a reconnecting client sends it,
    else after ``after``."""
    if last_event_id is None:
        return after
    text = last_event_id.strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_SEQ:
        raise Problem(400, "Last-Event-ID must be the id (a seq >= 0) of an event of this stream")
    return int(text)


async def follow(
    store: RedisRunStore, run_id: str, cursor: int, keepalive: float
) -> AsyncIterator[bytes]:
    """The SSE messages of ``run_id`` after ``cursor`` until the run is finished."""
    interval, last_write = POLL_MIN, time.monotonic()
    try:
        while True:
            events = await store.events_after(run_id, cursor, BATCH)
            for event in events:
                yield _frame(event)
                cursor = event.seq
            if events:
                interval, last_write = POLL_MIN, time.monotonic()
                if len(events) == BATCH:
                    continue
            record = await store.get_run(run_id)
            if record is None:
                yield _named("end", {"id": run_id, "gone": True})
                return
            if record.done:  # its last events were written with the state: read them too
                for event in await store.events_after(run_id, cursor):
                    yield _frame(event)
                yield _named("end", render.run_json(record))
                return
            idle = time.monotonic() - last_write
            if idle >= keepalive:
                yield b": keep-alive\n\n"
                idle, last_write = 0.0, time.monotonic()
            await asyncio.sleep(min(interval, keepalive - idle))
            interval = min(interval * 2, POLL_MAX)
    except (StoreError, RedisError) as exc:  # headers are sent: say it in the stream
        yield _named("error", {"status": 503, "backend": "redis", "detail": str(exc)})


def router(ctx: ApiContext) -> APIRouter:
    """The event endpoints."""
    api = APIRouter(tags=["events"])
    read = [Depends(ctx.require(Scope.read))]

    @api.get(
        "/runs/{run_id}/events",
        summary="A run's events after a cursor",
        response_model=EventList,
        dependencies=read,
        responses=problems(404),
    )
    async def list_events(
        run_id: RunId,
        after: After = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Events per page")] = 100,
    ) -> Any:
        store = await ctx.backends.store()
        record = await store.get_run(run_id)
        if record is None:
            raise RunNotFound(f"run {run_id!r} not found")
        events = await store.events_after(run_id, after, limit)
        return json_response(
            {
                "run_id": run_id,
                "events": [render.event_json(e) for e in events],
                "next_after": events[-1].seq if events else after,
                "done": record.done,
            }
        )

    @api.get(
        "/runs/{run_id}/events/stream",
        summary="Follow a run's events live (Server-Sent Events) until it ends",
        response_class=EventStream,
        dependencies=read,
        responses={
            200: {
                "description": "`id: SEQ` + `data: EVENT` per event; a final `event: end` "
                "with the run's status; `: keep-alive` comments while idle",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **problems(400, 404),
        },
    )
    async def stream_events(
        run_id: RunId,
        after: After = 0,
        last_event_id: Annotated[
            str | None,
            Header(max_length=32, description="Resume after this event (sent on reconnect)"),
        ] = None,
    ) -> EventStream:
        cursor = _resume_point(after, last_event_id)
        store = await ctx.backends.store()
        if await store.get_run(run_id) is None:
            raise RunNotFound(f"run {run_id!r} not found")
        return EventStream(
            follow(store, run_id, cursor, ctx.settings.api_sse_keepalive_seconds),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return api


__all__ = ["POLL_MAX", "POLL_MIN", "follow", "router"]
