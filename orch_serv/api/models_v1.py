"""Status models in the native API: ``GET /v1/models``, ``GET /v1/models/{name}``
(``?version=``) and ``PUT /v1/models/{name}`` (publish; the ``admin`` scope, as publishing
definitions changes what every instance created afterwards is held to).

Include it in the root application with
``app.include_router(models_v1.router(ctx), prefix="/v1")``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import ValidationError

from orch_serv.api.context import ApiContext
from orch_serv.api.problems import Problem
from orch_serv.api.tokens import Scope, TokenInfo
from orch_serv.api.v1.errors import problems
from orch_serv.statusmodel.model import StatusModel
from orch_serv.statusmodel.published import PublishedModels


def router(ctx: ApiContext) -> APIRouter:
    """The ``/models`` routes (mounted under ``/v1``)."""
    api = APIRouter(tags=["status models"])

    async def published() -> PublishedModels:
        store = await ctx.backends.store()
        return PublishedModels(store.redis, ctx.settings.key_prefix)

    @api.get(
        "/models",
        summary="Every current status model (the built-in ones included)",
        responses=problems(),
    )
    async def list_models(
        _: TokenInfo = Depends(ctx.require(Scope.read)),
    ) -> list[dict[str, Any]]:
        return [m.model_dump(mode="json") for m in await (await published()).list()]

    @api.get(
        "/models/{name}",
        summary="A status model: its current version, or the given one",
        responses=problems(404),
    )
    async def get_model(
        name: str,
        version: str | None = Query(None, description="A version an instance is pinned to."),
        _: TokenInfo = Depends(ctx.require(Scope.read)),
    ) -> dict[str, Any]:
        model = await (await published()).get(name, version)
        if model is None:
            what = f"status model {name!r}" + (f" version {version!r}" if version else "")
            raise Problem(404, f"{what} is not published", title="Status model not found")
        return model.model_dump(mode="json")

    @api.put(
        "/models/{name}",
        summary="Publish a status model (it becomes its name's current version)",
        responses=problems(400),
    )
    async def put_model(
        name: str,
        definition: dict[str, Any] = Body(
            ...,
            examples=[{"statuses": [{"name": "STARTED"}, {"name": "DONE", "after": ["STARTED"]}]}],
        ),
        _: TokenInfo = Depends(ctx.require(Scope.admin)),
    ) -> dict[str, Any]:
        if definition.get("name", name) != name:
            raise Problem(422, f"the body names model {definition['name']!r}, the path {name!r}")
        try:
            model = StatusModel.model_validate({**definition, "name": name})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "model"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise Problem(422, f"{where}: {message}", title="Invalid status model") from None
        await (await published()).publish([model])
        return model.model_dump(mode="json")

    return api


__all__ = ["router"]
