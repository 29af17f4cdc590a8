"""Rendering the dashboard's pages: the Jinja2 environment (templates shipped in the
package, autoescaped), the filters the templates use, and the headers every page carries
(no caching, no framing, a Content-Security-Policy that allows nothing from elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from orch_serv import __version__
from orch_serv.render import step_label

#: Sent with every dashboard response: scripts, styles and images from this server only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def iso(ts: float | None) -> str:
    """``2026-12-01 02:48:43.123Z`` (UTC), or an empty string for no time."""
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def duration(seconds: float | None) -> str:
    """A duration a person reads: ``850 ms``, ``12.4 s``, ``3 min 5 s``, ``2 h 3 min``."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def pretty(value: Any) -> str:
    """Indented JSON (what cannot be encoded is shown with ``repr``)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(value)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("orch_serv.api.ui", "templates"),
        autoescape=select_autoescape(["html", "svg"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso
    env.filters["duration"] = duration
    env.filters["pretty"] = pretty
    env.globals["step_label"] = step_label
    env.globals["version"] = __version__
    return env


ENV = _environment()


def base_url(request: Request) -> str:
    """Where the dashboard is mounted (``/ui``), as the pages link to it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


_NAV = {
    "runs": "runs",
    "runs_live": "runs",
    "run": "runs",
    "run_live": "runs",
    "flows": "flows",
    "flow": "flows",
    "health": "health",
    "deadletter": "health",
}


def render(name: str, request: Request, **values: Any) -> str:
    """The template ``name`` with ``values``, the base URL and the viewer (if any)."""
    values.setdefault("viewer", getattr(request.state, "viewer", None))
    values.setdefault("nav", _NAV.get(name.strip("_").split(".")[0], ""))
    return ENV.get_template(name).render(base=base_url(request), **values)


def finish(request: Request, response: HTMLResponse | RedirectResponse) -> Any:
    """Add the security headers, and the session cookie a request just created."""
    response.headers.update(SECURITY_HEADERS)
    cookie = getattr(request.state, "set_cookie", None)
    if cookie is not None:
        cookie(response)
    return response


def page(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A whole page (or fragment) as a response."""
    response = HTMLResponse(render(name, request, **values), status_code=status)
    return finish(request, response)  # type: ignore[no-any-return]


def redirect(request: Request, path: str) -> RedirectResponse:
    """303 See Other to ``path`` under the dashboard (after a POST: the browser GETs it)."""
    response = RedirectResponse(base_url(request) + path, status_code=303)
    return finish(request, response)  # type: ignore[no-any-return]


__all__ = ["ENV", "base_url", "duration", "finish", "iso", "page", "pretty", "redirect", "render"]
