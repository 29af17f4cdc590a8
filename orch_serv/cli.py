"""``orch-serv``: run orchestrators and services, start runs, inspect them.

Settings come from ``ORCH_SERV_*`` environment variables (see :class:`Settings`), or from the
global options, which win.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console

from orch_serv import render
from orch_serv.backends import open_backends, open_store
from orch_serv.constants import RunState
from orch_serv.exceptions import OrchServError, RunNotFound
from orch_serv.loader import load
from orch_serv.logs import configure_logging
from orch_serv.orchestrator.app import Orchestrator
from orch_serv.orchestrator.client import Client
from orch_serv.service.definition import as_services
from orch_serv.service.worker import ServiceWorker
from orch_serv.settings import Settings

app = typer.Typer(
    name="orch-serv",
    help="Message-driven orchestrator: flows of blocks over RabbitMQ, runs tracked in Redis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Wide when piped, so that ids are never split across lines (`orch-serv runs | grep ID`).
out = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class Format(StrEnum):
    """Output format."""

    table = "table"
    json = "json"


class _State:
    settings: Settings | None = None


def _settings() -> Settings:
    if _State.settings is None:
        _State.settings = Settings()
    return _State.settings


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(main())
    except RunNotFound as exc:
        raise _fail(exc.message) from None
    except OrchServError as exc:
        raise _fail(exc.message or str(exc)) from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (it is, on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return None
    return uvloop.new_event_loop


@app.callback()
def configure(
    amqp_url: Annotated[str | None, typer.Option(help="RabbitMQ URL.")] = None,
    redis_url: Annotated[str | None, typer.Option(help="Redis URL.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Exchange/queue name prefix.")] = None,
    key_prefix: Annotated[str | None, typer.Option(help="Redis key prefix.")] = None,
    log_level: Annotated[str | None, typer.Option(help="Log level.")] = None,
) -> None:
    """Global options; each also reads ORCH_SERV_<NAME> from the environment."""
    overrides = {
        "amqp_url": amqp_url,
        "redis_url": redis_url,
        "namespace": namespace,
        "key_prefix": key_prefix,
        "log_level": log_level,
    }
    try:
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        _State.settings = Settings.model_validate(given)
    except ValidationError as exc:
        raise _fail(f"invalid settings: {exc}", 2) from None
    configure_logging(_State.settings.log_level, _State.settings.log_format)


async def _until_signalled(ready: str | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready:
        err.print(ready, highlight=False)
    await stop.wait()


def _orchestrator(path: str) -> Orchestrator:
    obj = load(path)
    if not isinstance(obj, Orchestrator):
        raise OrchServError(f"{path!r} is not an orch_serv Orchestrator (got {type(obj).__name__})")
    return obj


@app.command()
def orchestrator(
    app_path: Annotated[str, typer.Argument(metavar="APP", help="e.g. flows.ingest:orchestrator")],
) -> None:
    """Run an orchestrator replica for APP's flows until SIGTERM/SIGINT."""
    settings = _settings()

    async def main() -> None:
        orch = _orchestrator(app_path)
        async with orch.run(settings):
            await _until_signalled()

    _run(main)


@app.command()
def service(
    app_path: Annotated[
        str, typer.Argument(metavar="APP", help="e.g. services_examples.validator:service")
    ],
) -> None:
    """Host APP's service(s) until SIGTERM/SIGINT; SIGTERM drains in-flight handlers."""
    settings = _settings()

    async def main() -> None:
        services = as_services(load(app_path))
        async with open_backends(settings) as (transport, _store):
            workers = [ServiceWorker(s, transport, settings) for s in services]
            for worker in workers:
                await worker.start()
            try:
                await _until_signalled()
            finally:
                await asyncio.gather(*(w.stop() for w in workers))

    _run(main)


@app.command()
def dev(
    app_path: Annotated[str, typer.Argument(metavar="APP", help="e.g. flows.ingest:orchestrator")],
) -> None:
    """All-in-one: APP's orchestrator and its services in one process (development, demos)."""
    settings = _settings()

    async def main() -> None:
        orch = _orchestrator(app_path)
        amqp, redis = settings.urls(embedded_default=True)
        embedded = [n for n, u in (("broker", amqp), ("store", redis)) if u.startswith("memory:")]
        if embedded:
            err.print(
                f"orch-serv dev: using the embedded in-memory {' and '.join(embedded)} "
                "(this process only; set ORCH_SERV_AMQP_URL / ORCH_SERV_REDIS_URL for servers)",
                highlight=False,
            )
        async with orch.run(settings, with_services=True, embedded_default=True):
            await _until_signalled(
                f"orch-serv dev: flows {orch.get_list_flows()}, services "
                f"{[s.name for s in orch.services]}; Ctrl-C to stop"
            )

    _run(main)


def _parse_body(body: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"--body is not valid JSON: {exc}", 2) from None


@app.command()
def start(
    flow: Annotated[str | None, typer.Argument(help="Flow name (omit with --target).")] = None,
    body: Annotated[str, typer.Option(help="JSON body of the first step.")] = "{}",
    key: Annotated[str | None, typer.Option(help="Idempotency key: same key, same run.")] = None,
    target: Annotated[str | None, typer.Option(help="Run a single block instead.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the run to finish.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Start a run of FLOW; prints its id (and with --wait, its final status)."""
    if flow is None and target is None:
        raise _fail("give a FLOW or --target BLOCK", 2)
    payload = _parse_body(body)
    settings = _settings()

    async def main() -> int:
        async with open_backends(settings) as (transport, store):
            client = Client(transport, store)
            spec = await client.resolve(flow, target)
            if spec.name != (target or flow):
                err.print(
                    f"warning: {target or flow!r} is not registered; using the default "
                    f"{spec.kind} {spec.name!r}",
                    highlight=False,
                )
            run_id = await client.start(flow, payload, key=key, target=target)
            if not wait:
                if fmt is Format.json:
                    out.print_json(render.dumps({"id": run_id}))
                else:
                    out.print(run_id, highlight=False)
                return 0
            try:
                record = await client.wait(run_id, timeout=timeout)
            except TimeoutError:
                record = await client.get(run_id)
            _show_status(record, fmt)
            return 0 if record.state is RunState.SUCCEEDED else 1

    raise typer.Exit(_run(main))


def _show_status(record: Any, fmt: Format) -> None:
    if fmt is Format.json:
        out.print_json(render.dumps(render.run_json(record)))
    else:
        out.print(render.status_table(record))


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    history: Annotated[bool, typer.Option(help="One row per event.")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Show a run's status (done, id, state, status), or its history."""
    settings = _settings()

    async def main() -> None:
        store = await open_store(settings)
        try:
            client = Client(None, store)
            record = await client.get(run_id)
            events = await client.events(run_id) if history else []
        finally:
            await store.close()
        if fmt is Format.json:
            document: Any = render.run_json(record)
            if history:
                document = {"run": document, "events": [render.event_json(e) for e in events]}
            out.print_json(render.dumps(document))
        elif history:
            out.print(render.history_table(run_id, events))
        else:
            out.print(render.status_table(record))

    _run(main)


@app.command()
def runs(
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow.")] = None,
    state: Annotated[RunState | None, typer.Option(help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 50,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """List recent runs, most recent first."""
    settings = _settings()

    async def main() -> None:
        store = await open_store(settings)
        try:
            records = await store.list_runs(flow=flow, state=state, limit=limit)
        finally:
            await store.close()
        if fmt is Format.json:
            out.print_json(render.dumps([render.run_json(r) for r in records]))
        else:
            out.print(render.runs_table(records))

    _run(main)


@app.command()
def flows(
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """List the flows and blocks orchestrators have registered."""
    settings = _settings()

    async def main() -> None:
        store = await open_store(settings)
        try:
            specs = await store.list_specs()
        finally:
            await store.close()
        if fmt is Format.json:
            out.print_json(render.dumps([s.model_dump(mode="json") for s in specs]))
        else:
            out.print(render.flows_table(specs))

    _run(main)


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    compensate: Annotated[
        bool, typer.Option(help="Run the compensations of the completed steps first.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Recorded in the history.")] = "",
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Cancel a run: CANCELLED at once, and its running handler is told to stop."""
    settings = _settings()

    async def main() -> None:
        async with open_backends(settings) as (transport, store):
            record = await Client(transport, store).cancel(
                run_id, compensate=compensate, reason=reason
            )
        _show_status(record, fmt)

    _run(main)


@app.command()
def retry(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    wait: Annotated[bool, typer.Option(help="Wait for the run to finish.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Resume a FAILED or TIMED_OUT run from the step that failed, as a new attempt."""
    settings = _settings()

    async def main() -> int:
        async with open_backends(settings) as (transport, store):
            client = Client(transport, store)
            record = await client.retry(run_id)
            if wait:
                try:
                    record = await client.wait(run_id, timeout=timeout)
                except TimeoutError:
                    record = await client.get(run_id)
        _show_status(record, fmt)
        return 0 if not wait or record.state is RunState.SUCCEEDED else 1

    raise typer.Exit(_run(main))


dlq = typer.Typer(help="The dead-letter queue: messages the system could not handle.")
app.add_typer(dlq, name="dlq")


@dlq.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(min=1, max=100000, help="At most this many.")] = 50,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """List dead letters (oldest first) with the reason each is there."""
    settings = _settings()

    async def main() -> None:
        async with open_backends(settings) as (transport, _store):
            letters = await transport.dead_letters(limit)
        if fmt is Format.json:
            out.print_json(render.dumps([render.dead_json(d) for d in letters]))
        else:
            out.print(render.dead_table(letters))

    _run(main)


@dlq.command("show")
def dlq_show(message_id: Annotated[str, typer.Argument(help="Dead-letter id.")]) -> None:
    """Show one dead letter with its headers and body."""
    settings = _settings()

    async def main() -> None:
        async with open_backends(settings) as (transport, _store):
            letters = await transport.dead_letters(100_000)
        found = [d for d in letters if d.message_id == message_id]
        if not found:
            raise RunNotFound(f"dead letter {message_id!r} not found")
        out.print_json(render.dumps(render.dead_json(found[0], full=True)))

    _run(main)


@dlq.command("replay")
def dlq_replay(
    message_ids: Annotated[list[str] | None, typer.Argument(help="Ids; none with --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Publish dead letters again to where they came from."""
    count = _on_dead_letters("replay", message_ids, all_)
    out.print(f"replayed {count} dead letter(s)")


@dlq.command("purge")
def dlq_purge(
    message_ids: Annotated[list[str] | None, typer.Argument(help="Ids; none with --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Drop every dead letter.")] = False,
) -> None:
    """Drop dead letters for good."""
    count = _on_dead_letters("purge", message_ids, all_)
    out.print(f"purged {count} dead letter(s)")


def _on_dead_letters(action: str, message_ids: list[str] | None, all_: bool) -> int:
    if not message_ids and not all_:
        raise _fail("give dead-letter ids, or --all", 2)
    settings = _settings()
    ids = None if all_ else message_ids

    async def main() -> int:
        async with open_backends(settings) as (transport, _store):
            if action == "replay":
                return await transport.replay_dead_letters(ids)
            return await transport.purge_dead_letters(ids)

    return _run(main)


def main() -> None:
    """Console-script entry point."""
    app()
