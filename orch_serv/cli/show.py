"""The read-only commands: ``status`` (``--history``, ``--watch``), ``runs`` and ``flows``.

They read Redis, and RabbitMQ only to say what a stuck run waits for, through a transport
that declares nothing: a mistyped ``--namespace`` creates no exchange or queue.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orch_serv import render
from orch_serv.backends import open_store
from orch_serv.cli.app import app
from orch_serv.cli.common import Format, non_negative, out, run, settings
from orch_serv.cli.probe import QueueProbe
from orch_serv.cli.runs import outcome
from orch_serv.cli.watch import follow
from orch_serv.constants import RunState
from orch_serv.orchestrator.client import Client
from orch_serv.orchestrator.members import group_views

_FORMAT = typer.Option("--format", help="table or json.")


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    history: Annotated[bool, typer.Option(help="One row per event.")] = False,
    watch: Annotated[
        bool,
        typer.Option(help="Follow the run live until it ends; exit 0 only for SUCCEEDED."),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(callback=non_negative, help="With --watch: give up after these seconds."),
    ] = None,
    fmt: Annotated[Format, _FORMAT] = Format.table,
) -> None:
    """Show a run's status (done, id, state, status), or its history.

    For a run whose step waits in a queue: the queue's depth and consumers, and a hint when
    nothing consumes it. --watch follows the run until it ends (exit 0 only for SUCCEEDED).
    """
    config = settings()
    if watch:
        raise typer.Exit(outcome(run(lambda: follow(config, run_id, fmt, timeout))))

    async def main() -> None:
        store = await open_store(config)
        try:
            client = Client(None, store)
            record = await client.get(run_id)
            events = await client.events(run_id) if history else []
            async with QueueProbe(config) as probe:
                waiting = await probe.waiting(record, store)
            groups = await group_views(store, record, events)
        finally:
            await store.close()
        if fmt is Format.json:
            document: Any = render.run_json(record, waiting, groups)
            if history:
                document = {"run": document, "events": [render.event_json(e) for e in events]}
            out.print_json(render.dumps(document))
            return
        if history:
            out.print(render.history_table(run_id, events, record.steps_total))
        else:
            out.print(render.status_table(record))
        for line in render.waiting_lines(waiting) if waiting else []:
            out.print(line, highlight=False)
        for group in groups:
            for line in group.lines():
                out.print(line, highlight=False)

    run(main)


@app.command()
def runs(
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow.")] = None,
    state: Annotated[
        RunState | None,
        typer.Option(case_sensitive=False, help="Only runs in this state (any case)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 50,
    fmt: Annotated[Format, _FORMAT] = Format.table,
) -> None:
    """List recent runs, most recent first."""
    config = settings()

    async def main() -> None:
        store = await open_store(config)
        try:
            records = await store.list_runs(flow=flow, state=state, limit=limit)
        finally:
            await store.close()
        if fmt is Format.json:
            out.print_json(render.dumps([render.run_json(r) for r in records]))
        else:
            out.print(render.runs_table(records))

    run(main)


@app.command()
def flows(fmt: Annotated[Format, _FORMAT] = Format.table) -> None:
    """List the flows and blocks orchestrators have registered."""
    config = settings()

    async def main() -> None:
        store = await open_store(config)
        try:
            specs = await store.list_specs()
        finally:
            await store.close()
        if fmt is Format.json:
            out.print_json(render.dumps([s.model_dump(mode="json") for s in specs]))
        else:
            out.print(render.flows_table(specs))

    run(main)
