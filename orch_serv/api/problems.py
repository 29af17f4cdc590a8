"""One error shape for the native API: RFC 9457 ``application/problem+json``.

Handlers raise :class:`Problem` (or let a known library error through); :func:`install`
turns every error into a problem document, so a client's mistake is a 4xx with a reason and
a backend that does not answer is a 503 that names it. Only a defect of the server itself is
a 500, and it is logged with its traceback.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from aiormq.exceptions import AMQPError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from orch_serv.exceptions import (
    DeadLetterNotFound,
    FlowNotFound,
    IdempotencyConflict,
    InvalidRunState,
    MessageTooLarge,
    OrchServError,
    RunNotFound,
    StoreError,
    TransportError,
)

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("orch_serv.api")


class Problem(Exception):
    """An error answered as a problem document: ``status``, a short ``title`` (the HTTP
    reason unless given), a ``detail`` for this occurrence and any ``extra`` members."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra

    def document(self, instance: str) -> dict[str, Any]:
        """The JSON body (``type`` is ``about:blank``: the status says what kind it is)."""
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extra,
        }


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    """The response of ``problem`` for ``request``."""
    return JSONResponse(
        problem.document(request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def unavailable(what: str, exc: BaseException) -> Problem:
    """503 naming the backend that failed."""
    return Problem(503, f"{what} is unavailable: {exc}", title="Backend unavailable", backend=what)


def from_exception(exc: BaseException) -> Problem | None:
    """The problem a known error stands for, or None for a defect."""
    match exc:
        case Problem():
            return exc
        case RunNotFound():
            return Problem(404, str(exc), title="Run not found")
        case FlowNotFound():
            return Problem(404, str(exc), title="Flow not found")
        case DeadLetterNotFound():
            return Problem(404, str(exc), title="Dead letter not found")
        case IdempotencyConflict():
            return Problem(
                409,
                str(exc),
                title="Idempotency key in use",
                key=exc.key,
                run_id=exc.run_id,
                flow=exc.flow,
            )
        case InvalidRunState():
            return Problem(409, str(exc), title="Invalid run state")
        case MessageTooLarge():
            return Problem(413, str(exc), title="Message too large")
        case StoreError():
            return unavailable("redis", exc)
        case TransportError():
            return unavailable("rabbitmq", exc)
        case RedisError():
            return unavailable("redis", exc)
        case AMQPError():
            return unavailable("rabbitmq", exc)
        case OrchServError():
            return Problem(400, str(exc))
        case ConnectionError() | TimeoutError():
            return unavailable("backend", exc)
    return None


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return Problem(400, "the request body is not valid JSON", title="Malformed JSON")
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
    return Problem(422, where or "invalid request", title="Invalid request", errors=errors)


def install(app: FastAPI) -> None:
    """Register the handlers that render every error as a problem document."""

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(_validation_problem(exc), request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        return problem_response(Problem(exc.status_code, str(exc.detail), headers=headers), request)

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        problem = from_exception(exc)
        if problem is None:
            log.exception("api.unhandled", path=request.url.path, method=request.method)
            problem = Problem(500, "internal error; the server log has the traceback")
        return problem_response(problem, request)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # Known errors become their 4xx/503 here; anything else is a defect: a logged 500.
    for known in (Problem, OrchServError, RedisError, AMQPError, ConnectionError, TimeoutError):
        app.add_exception_handler(known, on_error)
    app.add_exception_handler(Exception, on_error)


__all__ = ["PROBLEM_JSON", "Problem", "from_exception", "install", "problem_response"]
