"""The Statusek surface (``/statusek``, and the root with ``ORCH_SERV_API_STATUSEK_AT_ROOT``):
Statusek's routes, request and response JSON and message texts, over status-model instances
(runs of kind ``object``; the token is the run id) and runs of flows that name a model.

Every route takes any HTTP verb and a JSON body, as Statusek's did, and answers HTTP 200 with
``{"status", "message", "data"}`` for every rule outcome. Unlike Statusek it needs a bearer
token (``read`` for the checks and events, ``start`` for ``instance/create``, ``operate`` to
set statuses): without one, 401 (403 for a missing scope) in the same envelope. The
deliberate differences from Statusek are listed in ``docs/api.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.exceptions import RedisError

from orch_serv import __version__
from orch_serv.api.context import ApiContext, AuthError
from orch_serv.api.statusek_params import (
    Params,
    ParamsError,
    answer,
    parse,
    parsing_failed,
    refused,
)
from orch_serv.api.statusek_views import event_json, global_json
from orch_serv.api.tokens import Scope
from orch_serv.exceptions import OrchServError
from orch_serv.statusmodel.codes import RULE_REFUSALS, Code, text
from orch_serv.store.statuses import StatusStore

log = structlog.get_logger("orch_serv.api.statusek")

#: Statusek's version, as ``/about`` reported it.
STATUSEK_VERSION = "2.7.2"
HOME_PAGE = "https://github.com/aleksaan/statusek"
ANY_VERB = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

Handler = Callable[[Params, StatusStore], Awaitable[JSONResponse]]


class _Statuses:
    """The status store, made on first use from the (lazily connected) run store."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._store: StatusStore | None = None

    async def get(self) -> StatusStore:
        store = await self.ctx.backends.store()
        if self._store is None or self._store.store is not store:
            self._store = StatusStore(store)
        return self._store


def _install_errors(app: FastAPI) -> None:
    """Authentication errors and unavailable backends in Statusek's envelope."""

    async def on_auth(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        response = answer(False, exc.detail, status_code=exc.status)
        response.headers.update(exc.headers)
        return response

    async def on_backend(request: Request, exc: Exception) -> JSONResponse:
        reason = exc.message if isinstance(exc, OrchServError) else str(exc)
        log.warning("statusek.backend_error", path=request.url.path, error=reason)
        message = text(Code.DATABASE_ERROR).replace("%s", reason)
        return answer(False, message, {"error": reason}, status_code=503)

    async def on_defect(request: Request, exc: Exception) -> JSONResponse:
        log.exception("statusek.unhandled", path=request.url.path)
        return answer(False, "internal error; the server log has the traceback", status_code=500)

    app.add_exception_handler(AuthError, on_auth)
    for backend in (OrchServError, RedisError, ConnectionError, TimeoutError):
        app.add_exception_handler(backend, on_backend)
    app.add_exception_handler(Exception, on_defect)


def build(ctx: ApiContext) -> FastAPI:
    """The Statusek application."""
    app = FastAPI(
        title="orch_serv: Statusek surface",
        version=__version__,
        description=(
            "Statusek's API over orch_serv status models. Every route takes any verb and a "
            'JSON body, and answers `{"status", "message", "data"}`. Needs '
            "`Authorization: Bearer <token>`."
        ),
    )
    _install_errors(app)
    statuses = _Statuses(ctx)

    def route(path: str, scope: Scope, summary: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(
                request: Request, _: Any = Depends(ctx.require(scope))
            ) -> JSONResponse:
                try:
                    params = parse(await request.body())
                except ParamsError as exc:
                    return parsing_failed(str(exc))
                return await handler(params, await statuses.get())

            app.add_api_route(
                path, endpoint, methods=ANY_VERB, summary=summary, name=handler.__name__
            )
            return handler

        return register

    @app.api_route("/", methods=ANY_VERB, summary="Welcome", response_class=PlainTextResponse)
    async def home(_: Any = Depends(ctx.require(Scope.read))) -> str:
        return "Welcome home!"

    @app.api_route("/about", methods=ANY_VERB, summary="Version and home page")
    async def about(_: Any = Depends(ctx.require(Scope.read))) -> JSONResponse:
        return answer(
            True,
            "",
            {"db_version": STATUSEK_VERSION, "home page": HOME_PAGE, "orch_serv": __version__},
        )

    @route("/instance/create", Scope.start, "Create an instance of a status model")
    async def create(params: Params, store: StatusStore) -> JSONResponse:
        model = await store.models.get(params.object_name) if params.object_name else None
        if model is None:
            return refused(params, Code.OBJECT_NAME_IS_NOT_FOUND)
        timeout = params.instance_timeout
        seconds = float(timeout) if timeout is not None else model.timeout_seconds
        token = await store.create(model, seconds)
        return answer(True, "", {"instance_token": token})

    @route("/status/setStatus", Scope.operate, "Set a status of an instance")
    async def set_status(params: Params, store: StatusStore) -> JSONResponse:
        outcome = await store.set_status(
            params.instance_token,
            params.status_name,
            message=params.status_message or None,
        )
        if outcome.code is not Code.SUCCESS:
            return refused(params, outcome.code, outcome.finished)
        return answer(True, "", {})

    @route("/status/checkStatusIsReadyToSet", Scope.read, "Whether a status may be set now")
    async def check_ready(params: Params, store: StatusStore) -> JSONResponse:
        outcome = await store.check(params.instance_token, params.status_name)
        if outcome.code is Code.SUCCESS:
            return answer(
                True,
                "",
                {"status_is_ready_to_set": True, "status_is_ready_to_set_description": ""},
            )
        if outcome.code in RULE_REFUSALS:
            why = params.text(outcome.code, outcome.finished)
            return answer(
                True,
                "",
                {"status_is_ready_to_set": False, "status_is_ready_to_set_description": why},
            )
        return refused(params, outcome.code, outcome.finished)

    @route("/status/checkStatusIsSet", Scope.read, "Whether a status is set")
    async def check_set(params: Params, store: StatusStore) -> JSONResponse:
        governed = await store.governed(params.instance_token)
        outcome = await store.touch(params.instance_token)
        if not outcome.found:
            return refused(params, Code.INSTANCE_TOKEN_IS_NOT_FOUND)
        model = governed.model
        if model is None or model.status(params.status_name) is None:
            return refused(params, Code.STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT)
        is_set = params.status_name in await store.reached(params.instance_token)
        return answer(True, "", {"status_is_set": is_set})

    @route("/instance/checkIsFinished", Scope.read, "Whether an instance is finished")
    async def check_finished(params: Params, store: StatusStore) -> JSONResponse:
        outcome = await store.touch(params.instance_token)
        if not outcome.found:
            return refused(params, Code.INSTANCE_TOKEN_IS_NOT_FOUND)
        return answer(
            True,
            "",
            {
                "instance_is_finished": bool(outcome.finished),
                "instanse_is_finished_description": outcome.finished,
                "instance_is_finished_description": outcome.finished,
            },
        )

    @route("/event/getEvents", Scope.read, "The statuses set on an instance, in order")
    async def get_events(params: Params, store: StatusStore) -> JSONResponse:
        governed = await store.governed(params.instance_token)
        outcome = await store.touch(params.instance_token)
        if not outcome.found:
            return refused(params, Code.INSTANCE_TOKEN_IS_NOT_FOUND)
        events = await store.status_events(params.instance_token)
        return answer(True, "", {"events": [event_json(e, governed.model) for e in events]})

    @route("/status/setGlobalStatus", Scope.operate, "Record a global event")
    async def set_global(params: Params, store: StatusStore) -> JSONResponse:
        if not params.status_name:
            return parsing_failed("status_name is required")
        await store.add_global(params.status_name)
        return answer(True, "", {})

    @route("/event/getGlobalEvents", Scope.read, "The global events, in order (an addition)")
    async def get_globals(params: Params, store: StatusStore) -> JSONResponse:
        items = await store.globals()
        return answer(True, "", {"events": [global_json(name, at) for name, at in items]})

    return app


__all__ = ["HOME_PAGE", "STATUSEK_VERSION", "build"]
