"""The StateService surface's JSON endpoints: charts and their machines.

- ``GET /charts``, ``GET /charts/{chart}`` (read): the charts, in StateService's schema;
- ``PUT /charts/{chart}`` (admin): load a chart from its YAML body (the body of a chart file);
  it becomes the chart's current version, and its ``default`` machine is created (or, with
  ``reset=true``, started again on this version);
- ``GET /charts/{chart}/machines``, ``GET /charts/{chart}/machines/{id}`` (read): machines,
  with their state, counters and times;
- ``PUT /charts/{chart}/machines/{id}`` (operate): create a machine (201), or read the one
  that exists (200); ``DELETE`` (operate) deletes it with its history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from orch_serv.api.context import ApiContext
from orch_serv.api.stateservice import Refused, chart_store, checked_name
from orch_serv.api.tokens import Scope, TokenInfo
from orch_serv.charts.loader import parse_chart
from orch_serv.charts.model import Chart, Func
from orch_serv.charts.yamltext import MAX_CHART_BYTES
from orch_serv.store.charts import DEFAULT_MACHINE, Answer, ChartStore, Machine


def _iso(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat() if seconds else None


def chart_json(chart: Chart, *, default: bool = False) -> dict[str, Any]:
    """A chart as JSON: name, version, whether it is the default chart, and its definition in
    StateService's schema (``current_state`` is where a new machine starts)."""
    return {"name": chart.name, "version": chart.version, "default": default, **chart.seed_form()}


def machine_json(machine: Machine) -> dict[str, Any]:
    """A machine as JSON: where it is, its counters (by state), its times."""
    counters = {}
    for state in machine.chart.states:
        if state.func is Func.INCREMENT:
            counters[state.name] = {
                "key": state.key,
                "value": machine.counters.get(state.name, state.start),
                "target": state.target,
            }
    return {
        "chart": machine.chart.name,
        "machine": machine.machine,
        "run_id": machine.run_id,
        "version": machine.chart.version,
        "state": machine.state,
        "ended": machine.ended,
        "run_state": machine.run_state.value,
        "due": _iso(machine.due),
        "counters": counters,
        "created_at": _iso(machine.created_at),
        "updated_at": _iso(machine.updated_at),
        "finished_at": _iso(machine.finished_at),
    }


async def _chart(charts: ChartStore, name: str) -> Chart:
    chart = await charts.get(checked_name("chart name", name))
    if chart is None:
        raise Refused(404, f"no chart named {name!r}")
    return chart


def router(ctx: ApiContext) -> APIRouter:
    """The ``/charts`` routes."""
    api = APIRouter(prefix="/charts", tags=["charts"])
    read = ctx.require(Scope.read)
    operate = ctx.require(Scope.operate)
    admin = ctx.require(Scope.admin)

    @api.get("", summary="The charts")
    async def list_charts(_: TokenInfo = Depends(read)) -> list[dict[str, Any]]:
        charts = await chart_store(ctx)
        default = await charts.default_name()
        return [chart_json(c, default=c.name == default) for c in await charts.list_charts()]

    @api.get("/{chart}", summary="A chart")
    async def get_chart(chart: str, _: TokenInfo = Depends(read)) -> dict[str, Any]:
        charts = await chart_store(ctx)
        found = await _chart(charts, chart)
        return chart_json(found, default=await charts.default_name() == found.name)

    @api.put("/{chart}", summary="Load a chart from its YAML (the request body)")
    async def put_chart(
        request: Request,
        chart: str,
        _: TokenInfo = Depends(admin),
        default: Annotated[bool, Query(description="Make it the default chart.")] = False,
        reset: Annotated[
            bool, Query(description="Start the `default` machine again on this version.")
        ] = False,
    ) -> JSONResponse:
        name = checked_name("chart name", chart)
        body = await request.body()
        if len(body) > MAX_CHART_BYTES:
            raise Refused(413, f"a chart is at most {MAX_CHART_BYTES} bytes")
        parsed = parse_chart(body, name=name, source=f"PUT /charts/{name}")
        charts = await chart_store(ctx)
        previous, is_default = await charts.save(parsed, default=default)
        if reset:
            created = await charts.reset_machine(parsed, DEFAULT_MACHINE)
        else:
            created = await charts.create_machine(parsed, DEFAULT_MACHINE)
        document = chart_json(parsed, default=is_default)
        document["replaced_version"] = previous
        document["default_machine_created"] = created.answer is Answer.CREATED
        return JSONResponse(document, status_code=201 if previous is None else 200)

    @api.get("/{chart}/machines", summary="The machines of a chart")
    async def list_machines(chart: str, _: TokenInfo = Depends(read)) -> list[dict[str, Any]]:
        charts = await chart_store(ctx)
        found = await _chart(charts, chart)
        return [machine_json(m) for m in await charts.machines(found.name)]

    @api.get("/{chart}/machines/{machine}", summary="A machine")
    async def get_machine(chart: str, machine: str, _: TokenInfo = Depends(read)) -> dict[str, Any]:
        charts = await chart_store(ctx)
        name = checked_name("chart name", chart)
        machine_id = checked_name("machine name", machine)
        if (await charts.ask(name, machine_id)).answer is Answer.NOT_FOUND:
            await _chart(charts, name)
            raise Refused(404, f"chart {name!r} has no machine {machine_id!r}")
        return machine_json(await charts.machine(name, machine_id))

    @api.put("/{chart}/machines/{machine}", summary="Create a machine (at the chart's start)")
    async def put_machine(
        chart: str, machine: str, token: TokenInfo = Depends(operate)
    ) -> JSONResponse:
        charts = await chart_store(ctx)
        found = await _chart(charts, chart)
        machine_id = checked_name("machine name", machine)
        created = await charts.create_machine(
            found, machine_id, component=f"stateservice:{token.name}"
        )
        document = machine_json(await charts.machine(found.name, machine_id))
        return JSONResponse(document, status_code=201 if created.answer is Answer.CREATED else 200)

    @api.delete(
        "/{chart}/machines/{machine}",
        status_code=204,
        summary="Delete a machine, with its history",
    )
    async def delete_machine(chart: str, machine: str, _: TokenInfo = Depends(operate)) -> Response:
        charts = await chart_store(ctx)
        name = checked_name("chart name", chart)
        machine_id = checked_name("machine name", machine)
        if not await charts.delete_machine(name, machine_id):
            await _chart(charts, name)
            raise Refused(404, f"chart {name!r} has no machine {machine_id!r}")
        return Response(status_code=204)

    return api


__all__ = ["chart_json", "machine_json", "router"]
