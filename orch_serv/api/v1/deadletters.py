"""``/v1/deadletters``: the dead-letter queue (list, show, replay, purge), as
``orch-serv dlq`` does it: replay and purge of given ids check first that every id is in the
queue (an unknown id is a 404 and nothing is done); a replay reports each letter that could
not be replayed (it stays in the queue)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from orch_serv import render
from orch_serv.api.context import ApiContext
from orch_serv.api.tokens import Scope
from orch_serv.api.v1.auth import auth_first
from orch_serv.api.v1.errors import problems
from orch_serv.api.v1.models import (
    MAX_PAGE,
    DeadLetterDoc,
    DeadLetterList,
    PurgeResult,
    ReplayResult,
    Selection,
)
from orch_serv.api.v1.respond import json_response
from orch_serv.exceptions import DeadLetterNotFound
from orch_serv.transport.base import Transport

#: How many dead letters show, replay and purge look through for an id (as ``orch-serv dlq``).
SCAN = 100_000


async def _check_known(transport: Transport, ids: list[str] | None) -> None:
    """Refuse ids that are not in the dead-letter queue, before anything is done."""
    if ids is None:
        return
    present = {d.message_id for d in await transport.dead_letters(SCAN)}
    unknown = [i for i in ids if i not in present]
    if unknown:
        listed = ", ".join(repr(i) for i in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise DeadLetterNotFound(f"dead letter{plural} {listed} not found; nothing was done")


def router(ctx: ApiContext) -> APIRouter:
    """The dead-letter endpoints."""
    api = APIRouter(tags=["dead letters"], route_class=auth_first(ctx))
    read = [Depends(ctx.require(Scope.read))]
    operate = [Depends(ctx.require(Scope.operate))]

    @api.get(
        "/deadletters",
        summary="Dead letters (oldest first) with the reason each is there",
        response_model=DeadLetterList,
        dependencies=read,
        responses=problems(),
    )
    async def list_dead_letters(
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many")] = 50,
    ) -> Any:
        letters = await (await ctx.backends.transport()).dead_letters(limit)
        return json_response({"dead_letters": [render.dead_json(d) for d in letters]})

    @api.get(
        "/deadletters/{letter_id}",
        summary="One dead letter with its headers and body",
        response_model=DeadLetterDoc,
        dependencies=read,
        responses=problems(404),
    )
    async def get_dead_letter(
        letter_id: Annotated[str, Path(min_length=1, max_length=512, description="Its id.")],
    ) -> Any:
        for letter in await (await ctx.backends.transport()).dead_letters(SCAN):
            if letter.message_id == letter_id:
                return json_response(render.dead_json(letter, full=True))
        raise DeadLetterNotFound(f"dead letter {letter_id!r} not found")

    @api.post(
        "/deadletters/replay",
        summary="Publish dead letters (given ids, or all) again to where they came from",
        response_model=ReplayResult,
        dependencies=operate,
        responses=problems(400, 404, 413),
    )
    async def replay(selection: Selection) -> Any:
        transport = await ctx.backends.transport()
        await _check_known(transport, selection.wanted)
        result = await transport.replay_dead_letters(selection.wanted)
        return json_response(
            {
                "ok": result.ok,
                "replayed": list(result.replayed),
                "failed": [{"id": f.message_id, "reason": f.reason} for f in result.failed],
                "missing": list(result.missing),
            }
        )

    @api.post(
        "/deadletters/purge",
        summary="Drop dead letters (given ids, or all) for good",
        response_model=PurgeResult,
        dependencies=operate,
        responses=problems(400, 404, 413),
    )
    async def purge(selection: Selection) -> Any:
        transport = await ctx.backends.transport()
        await _check_known(transport, selection.wanted)
        return json_response({"purged": await transport.purge_dead_letters(selection.wanted)})

    return api


__all__ = ["router"]
