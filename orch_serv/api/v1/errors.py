"""The error responses every ``/v1`` operation declares, so that ``/openapi.json`` tells a
client (and schemathesis) each problem document it can get, as ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any

from orch_serv.api.problems import PROBLEM_JSON
from orch_serv.api.v1.models import Problem

_WHY = {
    400: "Malformed JSON, or a cursor or header that cannot be read",
    401: "No bearer token, or one that is not valid",
    403: "The token lacks the scope this operation needs",
    404: "No such run, flow, version or dead letter",
    409: "The run's state forbids it, or the idempotency key belongs to another flow's run",
    413: "The request body (or the start message it makes) is too large",
    422: "A parameter or body member has the wrong type or value",
    503: "Redis or RabbitMQ does not answer (the problem's `backend` says which)",
}
_SCHEMA = Problem.model_json_schema()


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of an operation: 401, 403, 422 and 503, plus ``statuses``."""
    return {
        status: {"description": _WHY[status], "content": {PROBLEM_JSON: {"schema": _SCHEMA}}}
        for status in sorted({401, 403, 422, 503, *statuses})
    }


__all__ = ["problems"]
