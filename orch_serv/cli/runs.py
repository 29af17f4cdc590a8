"""The commands that change runs: ``start``, ``cancel``, ``retry`` and ``signal``."""

from __future__ import annotations

from typing import Annotated

import typer

from orch_serv import render
from orch_serv.backends import open_backends, open_store, open_transport
from orch_serv.cli.app import app
from orch_serv.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Format,
    fail,
    non_negative,
    out,
    parse_body,
    positive,
    run,
    settings,
)
from orch_serv.constants import RunState
from orch_serv.orchestrator.client import Client
from orch_serv.store.base import RunRecord

_FORMAT = typer.Option("--format", help="table or json.")
_WAIT_TIMEOUT = typer.Option(callback=non_negative, help="Seconds --wait waits (>= 0).")


def show_status(record: RunRecord, fmt: Format) -> None:
    """A run's status document (json) or table."""
    if fmt is Format.json:
        out.print_json(render.dumps(render.run_json(record)))
    else:
        out.print(render.status_table(record))


def outcome(record: RunRecord) -> int:
    """Exit code of a run waited for: 0 only when it SUCCEEDED."""
    return EXIT_OK if record.state is RunState.SUCCEEDED else EXIT_FAILED


@app.command()
def start(
    flow: Annotated[
        str | None, typer.Argument(help="Flow name (omit with --target, or for the default).")
    ] = None,
    body: Annotated[
        str, typer.Option(help="JSON body of the first step; @FILE reads a file, - stdin.")
    ] = "{}",
    key: Annotated[str | None, typer.Option(help="Idempotency key: same key, same run.")] = None,
    target: Annotated[str | None, typer.Option(help="Run a single block instead.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the run to finish.")] = False,
    timeout: Annotated[float, _WAIT_TIMEOUT] = 300.0,
    deadline: Annotated[
        float | None,
        typer.Option(callback=positive, help="Run deadline in seconds (> 0): then TIMED_OUT."),
    ] = None,
    fmt: Annotated[Format, _FORMAT] = Format.table,
) -> None:
    """Start a run of FLOW; prints its id (and with --wait, its final status).

    --target BLOCK runs one block instead; with neither, the registered default flow runs.
    An unknown flow or block exits 2 with the registered names. With --wait, exit 0 only
    when the run SUCCEEDED.
    """
    config = settings()
    payload = parse_body(body, config.max_message_bytes)

    async def main() -> int:
        store = await open_store(config)
        try:
            client = Client(None, store, max_message_bytes=config.max_message_bytes)
            await client.resolve(flow, target)  # refuse an unknown name before RabbitMQ
            transport = await open_transport(config)
            try:
                client.transport = transport
                run_id = await client.start(
                    flow, payload, key=key, target=target, deadline=deadline
                )
                if not wait:
                    if fmt is Format.json:
                        out.print_json(render.dumps({"id": run_id}))
                    else:
                        out.print(run_id, highlight=False)
                    return EXIT_OK
                try:
                    record = await client.wait(run_id, timeout=timeout)
                except TimeoutError:
                    record = await client.get(run_id)
            finally:
                await transport.close()
        finally:
            await store.close()
        show_status(record, fmt)
        return outcome(record)

    raise typer.Exit(run(main))


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    compensate: Annotated[
        bool, typer.Option(help="Run the compensations of the completed steps first.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Recorded in the history.")] = "",
    fmt: Annotated[Format, _FORMAT] = Format.table,
) -> None:
    """Cancel a run: CANCELLED at once, and its running handler is told to stop.

    Commands of the run still waiting in a queue are never started: a service with a run store skips any command whose run is no longer at that step and attempt.

    What can still happen: a handler already running finishes if it ignores the stop (its reply is recorded as a late result), and a command taken in the instant between that check and the cancel runs once (docs/handlers.md).
    """  # noqa: E501 - typer keeps a docstring's line breaks in --help
    config = settings()

    async def main() -> RunRecord:
        async with open_backends(config) as (transport, store):
            return await Client(transport, store).cancel(
                run_id, compensate=compensate, reason=reason
            )

    show_status(run(main), fmt)


@app.command()
def retry(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    wait: Annotated[bool, typer.Option(help="Wait for the run to finish.")] = False,
    timeout: Annotated[float, _WAIT_TIMEOUT] = 300.0,
    fmt: Annotated[Format, _FORMAT] = Format.table,
) -> None:
    """Resume a FAILED or TIMED_OUT run from the step that failed, as a new attempt."""
    config = settings()

    async def main() -> RunRecord:
        async with open_backends(config) as (transport, store):
            client = Client(transport, store)
            record = await client.retry(run_id)
            if wait:
                try:
                    record = await client.wait(run_id, timeout=timeout)
                except TimeoutError:
                    record = await client.get(run_id)
            return record

    record = run(main)
    show_status(record, fmt)
    raise typer.Exit(outcome(record) if wait else EXIT_OK)


@app.command()
def signal(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    name: Annotated[str, typer.Argument(help="Signal name (what the flow's wait step names).")],
    data: Annotated[
        str | None,
        typer.Option(help="JSON data of the signal; @FILE reads a file, - stdin."),
    ] = None,
    fmt: Annotated[Format, _FORMAT] = Format.table,
) -> None:
    """Send signal NAME to a run: a step of the run waiting for it moves on (now, or when the
    run gets there); with --data, that data is the wait step's output.

    An unknown run exits 1; a finished run exits 1 (it takes no signal); a bad name or data
    exits 2.
    """
    config = settings()
    payload = None if data is None else parse_body(data, config.max_message_bytes, "--data")

    async def main() -> RunRecord:
        store = await open_store(config)
        try:
            client = Client(None, store, max_message_bytes=config.max_message_bytes)
            try:
                return await client.signal(run_id, name, payload, component="cli")
            except ValueError as exc:
                raise fail(str(exc), EXIT_USAGE) from None
        finally:
            await store.close()

    show_status(run(main), fmt)
