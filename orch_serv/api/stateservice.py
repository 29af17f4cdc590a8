"""The StateService surface (``/stateservice``, and ``/state`` at the root when configured).

StateService's contract, over chart machines in Redis (``orch_serv.store.charts``):

- ``GET /state?state=X``: 200 with the body ``X`` when X is the current state, else 406;
- ``PUT /state?state=X``: when X is the current state, count it (200 ``X``; the machine moves
  on when the counter reaches its target); 406 when X is not current (the old server answered
  500), 409 with a reason at an end state, a time state or a stopped machine;
- 400 without ``state``; 404 for an unknown chart or machine; 401/403 before anything else.

``chart=NAME`` and ``machine=ID`` pick the chart (default: the default chart) and the machine
(default: ``default``); ``/charts/{chart}/machines/{id}/state`` is the same by path. Bodies are
plain text, as StateService's were. The JSON endpoints under ``/charts`` are in
:mod:`orch_serv.api.stateservice_charts`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiormq.exceptions import AMQPError
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from orch_serv.api import problems
from orch_serv.api.context import ApiContext, AuthError
from orch_serv.api.tokens import Scope, TokenInfo
from orch_serv.charts.model import NAME_PATTERN, ChartError, ChartNotFound
from orch_serv.charts.timers import charts_of
from orch_serv.exceptions import OrchServError
from orch_serv.store.charts import DEFAULT_MACHINE, Answer, ChartStore, StateAnswer

DESCRIPTION = """\
StateService's `/state` over orch_serv chart machines: `GET /state?state=X` answers 200 `X`
when X is the current state, 406 otherwise; `PUT /state?state=X` counts X when it is current
(200 `X`), 406 when it is not, 409 at an end state or a time state. `chart=` and `machine=`
pick the chart and the machine. Bearer tokens: `read` for GET, `operate` for PUT. Charts and
machines as JSON under `/charts`; docs/charts.md has the whole story.
"""

_STATE = Query(None, description="The state asked about or PUT (required).")
_CHART = Query(None, description="The chart (default: the default chart).")
_MACHINE = Query(None, description="The machine of the chart (default: `default`).")


class Refused(Exception):
    """An answer other than 200: status and a one-line reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def chart_store(ctx: ApiContext) -> ChartStore:
    """The charts of the context's run store."""
    charts = charts_of(await ctx.backends.store())
    assert charts is not None  # the API's store is always a Redis one
    return charts


def checked_name(what: str, value: str) -> str:
    """``value`` when it is a valid chart or machine name, else 400."""
    if not NAME_PATTERN.fullmatch(value):
        raise Refused(
            400, f"{value!r} is not a valid {what} (1-64 of letters, digits, '_', '.', '-')"
        )
    return value


def _wanted(state: str | None) -> str:
    if state is None or not state.strip():
        raise Refused(400, "missing query parameter: state (e.g. /state?state=green_state)")
    return state


async def _chart_name(charts: ChartStore, chart: str | None) -> str:
    if chart is not None:
        return checked_name("chart name", chart)
    return (await charts.require(None)).name


async def _missing(charts: ChartStore, chart: str, machine: str) -> Refused:
    if await charts.get(chart) is None:
        return Refused(404, f"no chart named {chart!r}")
    return Refused(404, f"chart {chart!r} has no machine {machine!r}")


def _iso(seconds: float | None) -> str:
    return datetime.fromtimestamp(seconds or 0, UTC).isoformat()


def _put_refusal(wanted: str, result: StateAnswer) -> Refused:
    match result.answer:
        case Answer.NOT_CURRENT:
            return Refused(406, f"{wanted!r} is not the current state ({result.state!r} is)")
        case Answer.ENDED:
            return Refused(409, f"{wanted!r} is an end state: the machine has ended")
        case Answer.TIMED:
            return Refused(
                409,
                f"{wanted!r} is a time state: it moves on by itself at {_iso(result.due)}, "
                "not by PUT",
            )
        case _:
            state = result.run_state.value if result.run_state else "stopped"
            return Refused(409, f"the machine is {state}: it takes no more PUTs")


async def get_state(
    ctx: ApiContext, state: str | None, chart: str | None, machine: str | None
) -> Response:
    """``GET /state``: 200 ``X`` when X is the current state, else 406."""
    wanted = _wanted(state)
    charts = await chart_store(ctx)
    name = await _chart_name(charts, chart)
    machine_id = checked_name("machine name", machine or DEFAULT_MACHINE)
    result = await charts.ask(name, machine_id)
    if result.answer is Answer.NOT_FOUND:
        raise await _missing(charts, name, machine_id)
    if result.state != wanted:
        raise Refused(406, f"{wanted!r} is not the current state")
    return PlainTextResponse(wanted)


async def put_state(
    ctx: ApiContext, token: TokenInfo, state: str | None, chart: str | None, machine: str | None
) -> Response:
    """``PUT /state``: count X when it is the current increment state (one compare-and-set)."""
    wanted = _wanted(state)
    charts = await chart_store(ctx)
    name = await _chart_name(charts, chart)
    machine_id = checked_name("machine name", machine or DEFAULT_MACHINE)
    result = await charts.put(name, machine_id, wanted, component=f"stateservice:{token.name}")
    if result.answer is Answer.NOT_FOUND:
        raise await _missing(charts, name, machine_id)
    if result.answer is not Answer.OK:
        raise _put_refusal(wanted, result)
    return PlainTextResponse(wanted)


def _plain(ctx: ApiContext, app: FastAPI) -> None:
    """The ``/state`` routes (by query and by path)."""
    read = ctx.require(Scope.read)
    operate = ctx.require(Scope.operate)

    @app.head("/state", include_in_schema=False)
    @app.get("/state", response_class=PlainTextResponse, summary="Is X the current state?")
    async def get_default(
        _: TokenInfo = Depends(read),
        state: str | None = _STATE,
        chart: str | None = _CHART,
        machine: str | None = _MACHINE,
    ) -> Response:
        return await get_state(ctx, state, chart, machine)

    @app.put("/state", response_class=PlainTextResponse, summary="Count X (when current)")
    async def put_default(
        token: TokenInfo = Depends(operate),
        state: str | None = _STATE,
        chart: str | None = _CHART,
        machine: str | None = _MACHINE,
    ) -> Response:
        return await put_state(ctx, token, state, chart, machine)

    @app.head("/charts/{chart}/machines/{machine}/state", include_in_schema=False)
    @app.get(
        "/charts/{chart}/machines/{machine}/state",
        response_class=PlainTextResponse,
        summary="Is X the machine's current state?",
    )
    async def get_by_path(
        chart: str, machine: str, _: TokenInfo = Depends(read), state: str | None = _STATE
    ) -> Response:
        return await get_state(ctx, state, chart, machine)

    @app.put(
        "/charts/{chart}/machines/{machine}/state",
        response_class=PlainTextResponse,
        summary="Count X on the machine (when current)",
    )
    async def put_by_path(
        chart: str,
        machine: str,
        token: TokenInfo = Depends(operate),
        state: str | None = _STATE,
    ) -> Response:
        return await put_state(ctx, token, state, chart, machine)


def _is_plain(request: Request) -> bool:
    return request.url.path.endswith("/state")


def _error(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """Plain text on the ``/state`` routes (StateService's shape), a problem document on the
    JSON ones."""
    if _is_plain(request):
        return PlainTextResponse(detail + "\n", status_code=status, headers=headers)
    return problems.problem_response(problems.Problem(status, detail, headers=headers), request)


def install_errors(app: FastAPI) -> None:
    """Render every error of the surface (auth first) as :func:`_error` says."""

    async def on_auth(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthError)
        return _error(request, exc.status, exc.detail, exc.headers)

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return _error(request, exc.status, exc.detail)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return _error(request, 400, where or "invalid request")

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _error(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ChartNotFound):
            return _error(request, 404, str(exc))
        if isinstance(exc, ChartError):
            return _error(request, 400, str(exc))
        problem = problems.from_exception(exc)
        if problem is None:
            problems.log.exception("stateservice.unhandled", path=request.url.path)
            problem = problems.Problem(500, "internal error; the server log has the traceback")
        if _is_plain(request):
            return _error(request, problem.status, problem.detail, problem.headers)
        return problems.problem_response(problem, request)  # with its extra members

    app.add_exception_handler(AuthError, on_auth)
    app.add_exception_handler(Refused, on_refused)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # Known errors are rendered here; anything else is a defect: a logged 500 (Starlette's
    # outermost middleware handles `Exception`, and re-raises it to the server).
    for known in (OrchServError, RedisError, AMQPError, ConnectionError, TimeoutError):
        app.add_exception_handler(known, on_error)
    app.add_exception_handler(Exception, on_error)


def build(ctx: ApiContext) -> FastAPI:
    """The StateService application (mount it at ``/stateservice``)."""
    from orch_serv.api import stateservice_charts

    app = FastAPI(title="orch_serv: StateService surface", description=DESCRIPTION)
    install_errors(app)
    _plain(ctx, app)
    app.include_router(stateservice_charts.router(ctx))
    return app


def mount_at_root(root: FastAPI, ctx: ApiContext) -> None:
    """Serve ``/state`` at the root of ``root`` as the old server did: a route placed before
    every other (a root mount of another surface would otherwise take the path)."""
    root.router.routes.insert(0, Route("/state", build(ctx)))


__all__ = ["Refused", "build", "chart_store", "checked_name", "install_errors", "mount_at_root"]
