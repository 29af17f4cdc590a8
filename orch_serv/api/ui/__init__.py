"""The operators' dashboard, served by ``orch-serv api`` at ``/ui``: server-rendered pages
(Jinja2 templates and static CSS/JS shipped in this package; nothing from the internet, no
build step) over the same backends and tokens as the API.

Pages: ``/runs`` (filters, counts per state, paging, live updates), ``/runs/{id}`` (timeline,
events, error, statuses, cancel/retry), ``/flows`` and ``/flows/{kind}/{name}`` (graphs,
versions, per-step figures), ``/health`` (queues, replicas, timers, dead letters). Login and
CSRF: see :mod:`orch_serv.api.ui.session`; docs/dashboard.md describes it all.

Mounted by :func:`orch_serv.api.app.create_app`: ``app.mount("/ui", ui.build(ctx))``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from aiormq.exceptions import AMQPError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from orch_serv.api import problems
from orch_serv.api.context import ApiContext
from orch_serv.api.ui import auth, flows, health, run, runs
from orch_serv.api.ui.session import LoginRequired, Sessions, UiError
from orch_serv.api.ui.templating import base_url, page, redirect
from orch_serv.exceptions import OrchServError

log = structlog.get_logger("orch_serv.api.ui")


def _error_page(request: Request, status: int, message: str, title: str | None) -> HTMLResponse:
    return page(
        request,
        "error.html",
        status=status,
        message=message,
        title=title or f"Error {status}",
        code=status,
    )


def install_errors(app: FastAPI) -> None:
    """Every error as an HTML page with its status (a login redirect for a page without a
    session); a backend that does not answer is a 503 naming it, never a 500."""

    async def on_login(request: Request, exc: Exception) -> Any:
        if request.method == "GET" and not request.url.path.endswith("/live"):
            target = request.url.path.removeprefix(base_url(request)) or "/runs"
            if request.url.query:
                target += "?" + request.url.query
            return redirect(request, f"/login?next={quote(target, safe='')}")
        return _error_page(request, 401, "log in first: your session has ended", "Log in")

    async def on_ui(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, UiError)
        return _error_page(request, exc.status, exc.message, exc.title)

    async def on_http(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        return _error_page(request, exc.status_code, str(exc.detail), None)

    async def on_validation(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        where = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        return _error_page(request, 400, where or "invalid request", "Bad request")

    async def on_error(request: Request, exc: Exception) -> Any:
        problem = problems.from_exception(exc)
        if problem is None:
            log.exception("ui.unhandled", path=request.url.path, method=request.method)
            return _error_page(request, 500, "internal error; the server log has it", None)
        return _error_page(request, problem.status, problem.detail, problem.title)

    app.add_exception_handler(LoginRequired, on_login)
    app.add_exception_handler(UiError, on_ui)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for known in (OrchServError, RedisError, AMQPError, ConnectionError, TimeoutError, Exception):
        app.add_exception_handler(known, on_error)


def build(ctx: ApiContext) -> FastAPI:
    """The dashboard application (mount it at ``/ui``)."""
    app = FastAPI(title="orch_serv dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    sessions = Sessions(ctx)
    install_errors(app)

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Any:
        return redirect(request, "/runs")

    app.include_router(auth.router(sessions))
    app.include_router(runs.router(ctx, sessions))
    app.include_router(run.router(ctx, sessions))
    app.include_router(flows.router(ctx, sessions))
    app.include_router(health.router(ctx, sessions))
    app.mount("/static", StaticFiles(packages=[("orch_serv.api.ui", "static")]), name="static")
    return app


__all__ = ["build"]
