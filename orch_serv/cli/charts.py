"""``orch-serv chart load|show|put``: state charts (StateService's YAML machines) in Redis.

A machine is a run (id ``CHART@MACHINE``): ``orch-serv status CHART@MACHINE --history`` shows
every PUT and transition. Exit codes: 0 done; 1 refused (not the current state, an end or
time state, an unknown chart or machine) or a backend down; 2 a bad chart file or option.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orch_serv import render
from orch_serv.backends import open_store
from orch_serv.charts.loader import load_chart
from orch_serv.charts.model import ChartError, check_name
from orch_serv.cli.app import app
from orch_serv.cli.common import EXIT_FAILED, EXIT_USAGE, Format, fail, out, run, settings
from orch_serv.store.charts import DEFAULT_MACHINE, Answer, ChartStore, Machine

chart_app = typer.Typer(
    name="chart",
    help="State charts (StateService): load a YAML chart, show it and its machines, PUT a state.",
    no_args_is_help=True,
)
app.add_typer(chart_app)

_MACHINE = typer.Option("--machine", "-m", help="The machine of the chart.")
_FORMAT = typer.Option("--format", help="table or json.")


def _name(what: str, value: str) -> str:
    try:
        return check_name(what, value)
    except ChartError as exc:
        raise fail(exc.message, EXIT_USAGE) from None


@chart_app.command("load")
def chart_load(
    file: Annotated[Path, typer.Argument(help="The chart, in StateService's YAML schema.")],
    name: Annotated[
        str | None, typer.Option(help="The chart's name (default: the file name's stem).")
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Make it the chart `/state` uses without chart=.")
    ] = False,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset", help="Start the `default` machine again on this version (its history goes)."
        ),
    ] = False,
) -> None:
    """Validate a chart file and store it (a new version if it changed); create its
    `default` machine unless it exists (an existing machine keeps its version and place, unless
    --reset starts it again)."""
    try:
        chart = load_chart(file, name=name)
    except ChartError as exc:
        raise fail(exc.message, EXIT_USAGE) from None
    config = settings()

    async def main() -> None:
        store = await open_store(config)
        try:
            charts = ChartStore.of(store)
            previous, is_default = await charts.save(chart, default=default)
            if reset:
                created = await charts.reset_machine(chart, DEFAULT_MACHINE, component="cli")
            else:
                created = await charts.create_machine(chart, DEFAULT_MACHINE, component="cli")
            machine = await charts.machine(chart.name, DEFAULT_MACHINE)
        finally:
            await store.close()
        replaced = "" if previous in (None, chart.version) else f" (replaces {previous})"
        out.print(
            f"chart {chart.name} version {chart.version} loaded{replaced}"
            f"{', the default chart' if is_default else ''}",
            highlight=False,
        )
        if created.answer is Answer.CREATED:
            out.print(f"machine {machine.run_id} created at {machine.state}", highlight=False)
        else:
            out.print(
                f"machine {machine.run_id} kept at {machine.state} "
                f"(version {machine.chart.version})",
                highlight=False,
            )

    run(main)


@chart_app.command("show")
def chart_show(
    name: Annotated[str, typer.Argument(help="The chart.")],
    machine: Annotated[str | None, _MACHINE] = None,
    fmt: Annotated[Format, _FORMAT] = Format.table,
) -> None:
    """Show a chart and its machines, or one machine (--machine) with its counters."""
    from orch_serv.api.stateservice_charts import chart_json, machine_json

    chart_name = _name("chart name", name)
    machine_id = None if machine is None else _name("machine name", machine)
    config = settings()

    async def main() -> None:
        store = await open_store(config)
        try:
            charts = ChartStore.of(store)
            chart = await charts.require(chart_name)
            if machine_id is not None:
                found = [await charts.machine(chart_name, machine_id)]
            else:
                found = await charts.machines(chart_name)
            is_default = await charts.default_name() == chart_name
        finally:
            await store.close()
        if fmt is Format.json:
            document: Any = (
                machine_json(found[0])
                if machine_id
                else {
                    **chart_json(chart, default=is_default),
                    "machines": [machine_json(m) for m in found],
                }
            )
            out.print_json(render.dumps(document))
            return
        if machine_id is None:
            out.print(_states_table(chart.seed_form(), chart.version))
        out.print(_machines_table(found))
        if machine_id is not None:
            out.print(f"history: orch-serv status {found[0].run_id} --history", highlight=False)

    run(main)


@chart_app.command("put")
def chart_put(
    name: Annotated[str, typer.Argument(help="The chart.")],
    state: Annotated[str, typer.Argument(help="The state to PUT (must be the current one).")],
    machine: Annotated[str, _MACHINE] = DEFAULT_MACHINE,
) -> None:
    """PUT a state, as `PUT /state?state=X` does: count it when it is the current state."""
    chart_name = _name("chart name", name)
    machine_id = _name("machine name", machine)
    config = settings()

    async def main() -> tuple[Answer, str]:
        store = await open_store(config)
        try:
            charts = ChartStore.of(store)
            await charts.require(chart_name)
            result = await charts.put(chart_name, machine_id, state, component="cli")
        finally:
            await store.close()
        if result.answer is Answer.OK:
            return result.answer, f"{state}: counted ({result.counted}); now at {result.state}"
        reasons = {
            Answer.NOT_FOUND: f"chart {chart_name!r} has no machine {machine_id!r}",
            Answer.NOT_CURRENT: f"{state!r} is not the current state ({result.state!r} is)",
            Answer.ENDED: f"{state!r} is an end state: the machine has ended",
            Answer.TIMED: f"{state!r} is a time state: it moves on by itself, not by PUT",
        }
        stopped = f"the machine is {result.run_state}: it takes no more PUTs"
        return result.answer, reasons.get(result.answer, stopped)

    answer, text = run(main)
    if answer is not Answer.OK:
        raise fail(text, EXIT_FAILED)
    out.print(text, highlight=False)


def _states_table(form: dict[str, Any], version: str) -> Table:
    table = Table(title=f"Chart version {version}, new machines start at {form['current_state']}")
    for column in ("State", "Func", "Counter", "Target", "When"):
        table.add_column(column, overflow="fold")
    for state in form["states"]:
        target = state.get("target", {})
        when = target.get("when", {})
        current = state.get("current")
        table.add_row(
            state["name"],
            state.get("func", "(end)"),
            f"{current['key']} from {current['value']}" if current else "",
            target.get("name", ""),
            str(when.get("value", "")),
        )
    return table


def _machines_table(machines: list[Machine]) -> Table:
    table = Table(title="Machines")
    for column in ("Machine", "Run ID", "State", "Run state", "Counters", "Due", "Version"):
        table.add_column(column, overflow="fold")
    for m in machines:
        table.add_row(
            m.machine,
            m.run_id,
            m.state,
            m.run_state.value,
            ", ".join(f"{k}={v}" for k, v in m.counters.items()),
            datetime.fromtimestamp(m.due, UTC).isoformat() if m.due else "",
            m.chart.version,
        )
    return table


__all__ = ["chart_app"]
