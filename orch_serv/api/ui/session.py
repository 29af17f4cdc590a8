"""Browser sessions of the dashboard, and the CSRF check of every form.

A browser cannot send a bearer header on a page load, so the dashboard has a login page:
``POST /ui/login`` with an API token checks it and opens a session. The browser keeps only a
random session secret, in the cookie ``orch_serv_ui`` (HttpOnly, SameSite=Strict, Path=/ui,
Secure over HTTPS); Redis keeps ``{prefix}:ui:session:<sha256 of the secret>`` -> the
token's id and the session's CSRF token, expiring after :data:`SESSION_SECONDS`. Every
request looks the token up again by its id, so revoking the token (``orch-serv token
revoke``) ends its sessions at once, and the session has exactly the token's scopes.

Every POST form carries the session's CSRF token in a hidden ``csrf`` field, compared in
constant time; a request whose ``Origin`` header names another host is refused as well.
The login form, which has no session yet, uses a double-submitted cookie instead.

With ``--insecure-no-auth`` there is no login: the first page opens an anonymous session
with every scope (it still carries a CSRF token, so another site cannot post to it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import cast
from urllib.parse import parse_qsl, urlsplit

import orjson
from fastapi import Request, Response

from orch_serv.api.context import ALL_SCOPES, ApiContext
from orch_serv.api.tokens import Scope, TokenInfo, TokenStore

SESSION_COOKIE = "orch_serv_ui"
LOGIN_COOKIE = "orch_serv_ui_login"
#: How long a session lasts after login (it ends earlier on logout or token revocation).
SESSION_SECONDS = 8 * 3600
#: What a form body may hold (the forms of the dashboard are a few short fields).
MAX_FORM_FIELDS = 200
ANONYMOUS = "insecure"


class UiError(Exception):
    """An error shown to the browser as a page with ``status`` and ``message``."""

    def __init__(self, status: int, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title


class LoginRequired(Exception):
    """No valid session: a page redirects to the login page, anything else is a 401."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: the session's token (its id and name), scopes and CSRF token."""

    token_id: str
    name: str
    scopes: frozenset[Scope]
    csrf: str

    def can(self, scope: Scope) -> bool:
        """True when the session's token carries ``scope`` (or ``admin``)."""
        return scope in self.scopes or Scope.admin in self.scopes

    @property
    def can_operate(self) -> bool:
        """Cancel, retry, replay and purge are allowed."""
        return self.can(Scope.operate)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _cookie_writer(request: Request, name: str, value: str | None, max_age: int) -> None:
    """Have :func:`templating.finish` set (or, with None, delete) a cookie on the response."""
    secure = request.url.scheme == "https"
    path = str(request.scope.get("root_path", "")).rstrip("/") or "/"
    earlier = getattr(request.state, "set_cookie", None)

    def write(response: Response) -> None:
        if earlier is not None:
            earlier(response)
        if value is None:
            response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="strict")
        else:
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path=path,
                secure=secure,
                httponly=True,
                samesite="strict",
            )

    request.state.set_cookie = write


class Sessions:
    """Sessions in the run store's Redis, under the settings' key prefix."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def key(self, secret: str) -> str:
        """The Redis key of a session (named by the hash of its secret)."""
        return f"{self.ctx.settings.key_prefix}:ui:session:{_digest(secret)}"

    async def _token(self, token_id: str) -> TokenInfo | None:
        if token_id == ANONYMOUS:
            return None
        tokens: TokenStore = await self.ctx.tokens()
        return next((t for t in await tokens.list() if t.id == token_id), None)

    async def current(self, request: Request) -> Viewer | None:
        """The viewer of ``request``'s session, or None (no cookie, expired, token revoked,
        or an anonymous session while authentication is on)."""
        secret = request.cookies.get(SESSION_COOKIE, "")
        if not secret or len(secret) > 200:
            return None
        redis = (await self.ctx.backends.store()).redis
        raw = await cast(Awaitable[str | bytes | None], redis.get(self.key(secret)))
        if raw is None:
            return None
        data = orjson.loads(raw)
        token_id, csrf = str(data["token"]), str(data["csrf"])
        if token_id == ANONYMOUS:
            if self.ctx.auth:
                return None
            return Viewer(ANONYMOUS, "insecure-no-auth", ALL_SCOPES, csrf)
        info = await self._token(token_id)
        if info is None:
            return None
        return Viewer(info.id, info.name, info.scopes, csrf)

    async def open(self, request: Request, token_id: str) -> Viewer:
        """A new session for ``token_id`` (its cookie is set on the response)."""
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        record = {"token": token_id, "csrf": csrf, "created": time.time()}
        redis = (await self.ctx.backends.store()).redis
        await cast(
            Awaitable[bool],
            redis.set(self.key(secret), orjson.dumps(record).decode(), ex=SESSION_SECONDS),
        )
        _cookie_writer(request, SESSION_COOKIE, secret, SESSION_SECONDS)
        info = await self._token(token_id)
        if info is None:
            return Viewer(ANONYMOUS, "insecure-no-auth", ALL_SCOPES, csrf)
        return Viewer(info.id, info.name, info.scopes, csrf)

    async def close(self, request: Request) -> None:
        """End ``request``'s session (logout) and delete its cookie."""
        secret = request.cookies.get(SESSION_COOKIE, "")
        if secret:
            redis = (await self.ctx.backends.store()).redis
            await cast(Awaitable[int], redis.delete(self.key(secret)))
        _cookie_writer(request, SESSION_COOKIE, None, 0)

    async def require(self, request: Request, scope: Scope = Scope.read) -> Viewer:
        """The viewer, checked before anything is looked up: :class:`LoginRequired` without
        a session (with ``--insecure-no-auth`` an anonymous one is opened), a 403 page when
        the token lacks ``scope``."""
        viewer = await self.current(request)
        if viewer is None:
            if self.ctx.auth:
                raise LoginRequired
            viewer = await self.open(request, ANONYMOUS)
        if not viewer.can(scope):
            raise UiError(
                403,
                f"your token ({viewer.name}) lacks the '{scope.value}' scope this needs",
                title="Forbidden",
            )
        request.state.viewer = viewer
        return viewer


def login_csrf(request: Request) -> str:
    """The login form's CSRF value: the one in the login cookie, or a new one (set)."""
    value = request.cookies.get(LOGIN_COOKIE, "")
    if not value or len(value) > 100:
        value = secrets.token_urlsafe(24)
        _cookie_writer(request, LOGIN_COOKIE, value, 3600)
    return value


def forget_login_csrf(request: Request) -> None:
    """Delete the login cookie (after a successful login)."""
    _cookie_writer(request, LOGIN_COOKIE, None, 0)


def same_origin(request: Request) -> bool:
    """False when the request's ``Origin`` header names another host than it was sent to."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc == host


def check_csrf(request: Request, expected: str, form: dict[str, str]) -> None:
    """A 403 page unless the form's ``csrf`` field equals ``expected`` (and same origin)."""
    given = form.get("csrf", "")
    if not same_origin(request):
        raise UiError(403, "the form was posted from another site", title="CSRF check failed")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise UiError(
            403,
            "the form's CSRF token is missing or wrong: reload the page and try again",
            title="CSRF check failed",
        )


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form body (the only kind the dashboard's forms send); a 400 or 415
    page for anything else. A field given twice keeps its first value."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise UiError(415, "forms must be sent as application/x-www-form-urlencoded")
    try:
        text = (await request.body()).decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise UiError(400, f"the form cannot be read: {exc}") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "LoginRequired",
    "Sessions",
    "UiError",
    "Viewer",
    "check_csrf",
    "forget_login_csrf",
    "login_csrf",
    "read_form",
    "same_origin",
]
