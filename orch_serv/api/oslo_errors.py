"""The Oslo status-api surface's error shape: ``{"message": "..."}``, as the seed's Lambdas
(and the API Gateway in front of them) answered.

A client's mistake is a 4xx with a message (malformed JSON, a missing or mistyped field,
invalid base64: 400, where the seed crashed into a 502); an unknown trace is a 404 with the
seed's messages; a backend that does not answer is a 503 naming it; only a defect of the
server is a 500, and it is logged with its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from aiormq.exceptions import AMQPError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from orch_serv.api import problems
from orch_serv.api.context import AuthError
from orch_serv.exceptions import OrchServError

log = structlog.get_logger("orch_serv.api.oslo")

#: Errors :func:`problems.from_exception` maps onto a status (a 4xx, or 503 for a backend).
_KNOWN: tuple[type[Exception], ...] = (
    OrchServError,
    RedisError,
    AMQPError,
    ConnectionError,
    TimeoutError,
)

#: The 401 body, the one API Gateway answers when its authorizer refuses a token.
UNAUTHORIZED = "Unauthorized"
#: The 403 body of the seed.
ACCESS_DENIED = "Access denied"


class OsloError(Exception):
    """An error answered as ``{"message": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def message_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"message": message}`` with ``status``."""
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    for error in errors:
        if tuple(error.get("loc", ())) == ("path", "s3_path"):
            given = str(error.get("input", ""))
            shown = given if len(given) <= 100 else given[:100] + "..."
            return f"Invalid base64 path: {shown}"
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors]
    return "Invalid request: " + ("; ".join(parts) or "invalid input")


def _allowed(routes: Sequence[BaseRoute], request: Request) -> str:
    """Every method ``routes`` serve at the request's path (Starlette names only the first
    matching route's, and the GET and the POST of one path are two routes)."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    path = path[len(root) :] if root and path.startswith(root) else path
    methods: set[str] = set()
    for route in routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install(app: FastAPI, routes: Sequence[BaseRoute] = ()) -> None:
    """Register the handlers that answer every error of ``app`` as ``{"message"}`` (a 405
    lists in ``Allow`` the methods of ``routes`` at that path)."""

    async def on_oslo(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OsloError)
        return message_response(exc.status, exc.message)

    async def on_auth(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        if exc.status == 401:
            return message_response(401, UNAUTHORIZED, exc.headers)
        return message_response(403, ACCESS_DENIED)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return message_response(400, _validation_message(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(routes, request) or headers.get("Allow", "")
        return message_response(exc.status_code, str(exc.detail), headers)

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        problem = problems.from_exception(exc)
        if problem is None:
            log.exception("oslo.unhandled", path=request.url.path, method=request.method)
            return message_response(500, "Internal server error")
        return message_response(problem.status, problem.detail)

    app.add_exception_handler(OsloError, on_oslo)
    app.add_exception_handler(AuthError, on_auth)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # known errors become their 4xx/503 here; anything else is a defect: a logged 500
    for known in _KNOWN:
        app.add_exception_handler(known, on_error)
    app.add_exception_handler(Exception, on_error)


__all__ = ["ACCESS_DENIED", "UNAUTHORIZED", "OsloError", "install", "message_response"]
