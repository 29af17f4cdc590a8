"""The login and logout pages of the dashboard (see :mod:`.session` for the design)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request

from orch_serv.api.tokens import Scope
from orch_serv.api.ui.session import (
    LOGIN_COOKIE,
    Sessions,
    UiError,
    check_csrf,
    forget_login_csrf,
    login_csrf,
    read_form,
    same_origin,
)
from orch_serv.api.ui.templating import page, redirect


def safe_next(target: str | None) -> str:
    """Where to go after login: a path under the dashboard, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target


def router(sessions: Sessions) -> APIRouter:
    """``GET/POST /login`` and ``POST /logout``."""
    api = APIRouter()

    def login_page(request: Request, status: int, error: str | None, target: str) -> Any:
        return page(
            request,
            "login.html",
            status=status,
            csrf=login_csrf(request),
            error=error,
            next=target,
            title="Log in",
        )

    @api.get("/login", include_in_schema=False)
    async def login_form(request: Request, next: str | None = None) -> Any:
        target = safe_next(next)
        if not sessions.ctx.auth or await sessions.current(request) is not None:
            return redirect(request, target)
        return login_page(request, 200, None, target)

    @api.post("/login", include_in_schema=False)
    async def login(request: Request) -> Any:
        form = await read_form(request)
        target = safe_next(form.get("next"))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = form.get("csrf", "")
        if (
            not same_origin(request)
            or not expected
            or not hmac.compare_digest(given.encode(), expected.encode())
        ):
            raise UiError(
                403,
                "the login form's CSRF token is missing or wrong: reload the login page",
                title="CSRF check failed",
            )
        if not sessions.ctx.auth:
            return redirect(request, target)
        token = form.get("token", "").strip()
        if not token:
            return login_page(request, 400, "Enter an API token.", target)
        info = await (await sessions.ctx.tokens()).check(token)
        if info is None:
            return login_page(request, 401, "That token is not valid.", target)
        if not info.allows(Scope.read):
            return login_page(
                request, 403, "That token lacks the 'read' scope the dashboard needs.", target
            )
        await sessions.open(request, info.id)
        forget_login_csrf(request)
        return redirect(request, target)

    @api.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Any:
        viewer = await sessions.current(request)
        if viewer is not None:
            check_csrf(request, viewer.csrf, await read_form(request))
        await sessions.close(request)
        return redirect(request, "/login" if sessions.ctx.auth else "/runs")

    return api


__all__ = ["router", "safe_next"]
