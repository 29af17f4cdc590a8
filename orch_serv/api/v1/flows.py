"""``/v1/flows``: the flow and block definitions orchestrators published, and their
versions (each version a run was started with stays readable)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from orch_serv.api.context import ApiContext
from orch_serv.api.problems import Problem
from orch_serv.api.tokens import Scope
from orch_serv.api.v1.errors import problems
from orch_serv.api.v1.models import FlowList, FlowVersions
from orch_serv.api.v1.respond import json_response
from orch_serv.flow.spec import FlowSpec
from orch_serv.orchestrator.client import unknown_name_message
from orch_serv.store.redis import RedisRunStore

Name = Annotated[str, Path(min_length=1, max_length=512, description="Flow or block name.")]
Kind = Annotated[Literal["flow", "block"], Query(description="A flow, or a block run on its own.")]


async def _unknown(store: RedisRunStore, kind: str, name: str) -> Problem:
    """404 naming the registered flows (or blocks) and the closest one."""
    known = sorted(s.name for s in await store.list_specs() if s.kind == kind)
    return Problem(
        404, unknown_name_message(kind, name, known), title="Flow not found", known=known
    )


def router(ctx: ApiContext) -> APIRouter:
    """The flow endpoints."""
    api = APIRouter(tags=["flows"])
    read = [Depends(ctx.require(Scope.read))]

    @api.get(
        "/flows",
        summary="Every current flow and block definition",
        response_model=FlowList,
        dependencies=read,
        responses=problems(),
    )
    async def list_flows() -> Any:
        specs = await (await ctx.backends.store()).list_specs()
        return json_response({"flows": [s.model_dump(mode="json") for s in specs]})

    @api.get(
        "/flows/{name}",
        summary="A flow's (or block's) current definition",
        response_model=FlowSpec,
        dependencies=read,
        responses=problems(404),
    )
    async def get_flow(name: Name, kind: Kind = "flow") -> Any:
        store = await ctx.backends.store()
        spec = await store.get_spec(kind, name)
        if spec is None:
            raise await _unknown(store, kind, name)
        return json_response(spec.model_dump(mode="json"))

    @api.get(
        "/flows/{name}/versions",
        summary="Every registered version of a flow (or block)",
        response_model=FlowVersions,
        dependencies=read,
        responses=problems(404),
    )
    async def list_versions(name: Name, kind: Kind = "flow") -> Any:
        store = await ctx.backends.store()
        versions = await store.spec_versions(kind, name)
        if not versions:
            raise await _unknown(store, kind, name)
        current = await store.get_spec(kind, name)
        return json_response(
            {
                "kind": kind,
                "name": name,
                "current": current.version if current else "",
                "versions": [s.model_dump(mode="json") for s in versions],
            }
        )

    @api.get(
        "/flows/{name}/versions/{version}",
        summary="One version of a flow's (or block's) definition",
        response_model=FlowSpec,
        dependencies=read,
        responses=problems(404),
    )
    async def get_version(
        name: Name,
        version: Annotated[str, Path(min_length=1, max_length=128, description="Version.")],
        kind: Kind = "flow",
    ) -> Any:
        store = await ctx.backends.store()
        spec = await store.get_spec(kind, name, version)
        if spec is None:
            versions = await store.spec_versions(kind, name)
            if not versions:
                raise await _unknown(store, kind, name)
            listed = ", ".join(repr(s.version) for s in versions)
            raise Problem(
                404,
                f"{kind} {name!r} has no version {version!r}; registered versions: {listed}",
                title="Version not found",
                known=[s.version for s in versions],
            )
        return json_response(spec.model_dump(mode="json"))

    return api


__all__ = ["router"]
