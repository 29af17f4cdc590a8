"""Answering the native API's documents: JSON as the CLI renders it, and the run lookups
that every run endpoint starts with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiormq.exceptions import AMQPError
from fastapi import Response

from orch_serv.constants import Phase
from orch_serv.exceptions import TransportError
from orch_serv.orchestrator.waiting import Waiting, waiting_for
from orch_serv.store.base import RunRecord

if TYPE_CHECKING:
    from orch_serv.api.context import ApiContext

log = structlog.get_logger("orch_serv.api")


def json_response(
    document: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``document`` as JSON, exactly as given (no response-model round trip: a run's
    document is the CLI's, members and all)."""
    return Response(
        orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def waiting(ctx: ApiContext, record: RunRecord) -> Waiting | None:
    """What ``record`` waits for, as ``orch-serv status`` says it: only for a step QUEUED or
    DISPATCHED (other runs need no RabbitMQ at all). A broker that does not answer leaves it
    out (the status still comes from Redis), as the CLI does."""
    if record.done or record.phase not in (Phase.QUEUED, Phase.DISPATCHED):
        return None
    try:
        transport = await ctx.backends.transport()
        return await waiting_for(record, await ctx.backends.store(), transport)
    except (TransportError, AMQPError, ConnectionError, TimeoutError) as exc:
        log.warning("api.waiting_unknown", run_id=record.run_id, error=str(exc))
        return None


__all__ = ["json_response", "waiting"]
