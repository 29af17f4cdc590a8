"""The long-running commands: ``orchestrator``, ``service`` and ``dev`` (until SIGTERM)."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from orch_serv.backends import open_backends
from orch_serv.cli.app import app
from orch_serv.cli.common import err, run, settings
from orch_serv.exceptions import OrchServError
from orch_serv.flow.yamlflows import is_flow_file
from orch_serv.legacy02.bridge import Bridge
from orch_serv.legacy02.orchestrators import SyncOrchestrator
from orch_serv.loader import load
from orch_serv.orchestrator.app import Orchestrator
from orch_serv.service.definition import Service, as_services
from orch_serv.service.runtime import tune_gc
from orch_serv.service.worker import ServiceWorker


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
    if isinstance(obj, SyncOrchestrator):  # an orch_serv 0.2 orchestrator, run distributed
        obj = Bridge(obj).orchestrator()
    if not isinstance(obj, Orchestrator):
        raise OrchServError(
            f"{path!r} is not an orch_serv Orchestrator, SyncOrchestrator or AsyncOrchestrator "
            f"(got {type(obj).__name__})"
        )
    return obj


def _services(path: str) -> list[Service]:
    obj = load(path)
    if is_flow_file(path) and not obj.services:
        raise OrchServError(f"{path}: the flow file lists no `services` to host")
    if isinstance(obj, SyncOrchestrator):  # the blocks of an orch_serv 0.2 orchestrator
        return [Bridge(obj).service]
    return as_services(obj)


@app.command()
def orchestrator(
    app_path: Annotated[
        str,
        typer.Argument(metavar="APP", help="e.g. flows.ingest:orchestrator or flows/ingest.yaml"),
    ],
) -> None:
    """Run an orchestrator replica for APP's flows until SIGTERM/SIGINT."""
    config = settings()

    async def main() -> None:
        orch = _orchestrator(app_path)
        async with orch.run(config):
            tune_gc()
            await _until_signalled()

    run(main)


@app.command()
def service(
    app_path: Annotated[
        str,
        typer.Argument(
            metavar="APP",
            help="e.g. services_examples.validator:service, or flows/ingest.yaml (its services)",
        ),
    ],
) -> None:
    """Host APP's service(s) until SIGTERM/SIGINT; SIGTERM drains in-flight handlers. APP may
    also be an orch_serv 0.2 SyncOrchestrator/AsyncOrchestrator: its blocks are hosted."""
    config = settings()

    async def main() -> None:
        services = _services(app_path)
        async with open_backends(config) as (transport, store):
            workers = [ServiceWorker(s, transport, config, store=store) for s in services]
            for worker in workers:
                await worker.start()
            tune_gc()
            try:
                await _until_signalled()
            finally:
                await asyncio.gather(*(w.stop() for w in workers))

    run(main)


@app.command()
def dev(
    app_path: Annotated[
        str,
        typer.Argument(metavar="APP", help="e.g. flows.ingest:orchestrator or flows/ingest.yaml"),
    ],
    api: Annotated[
        bool, typer.Option("--api/--no-api", help="Also serve the HTTP API and dashboard.")
    ] = True,
    api_port: Annotated[
        int | None, typer.Option(help="Port of the API (api_port; 0 picks a free one).")
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve the API without a token (by default a fresh admin token is printed).",
        ),
    ] = False,
) -> None:
    """All-in-one: APP's orchestrator and its services in one process (development, demos),
    and the HTTP API beside them (its URL and a fresh admin token are printed)."""
    config = settings()

    async def main() -> None:
        orch = _orchestrator(app_path)
        amqp, redis = config.urls(embedded_default=True)
        embedded = [n for n, u in (("broker", amqp), ("store", redis)) if u.startswith("memory:")]
        if embedded:
            err.print(
                f"orch-serv dev: using the embedded in-memory {' and '.join(embedded)} "
                "(this process only; set ORCH_SERV_AMQP_URL / ORCH_SERV_REDIS_URL for servers)",
                highlight=False,
            )
        ready = (
            f"orch-serv dev: flows {orch.get_list_flows()}, services "
            f"{[s.name for s in orch.services]}; Ctrl-C to stop"
        )
        async with orch.run(config, with_services=True, embedded_default=True) as running:
            if not api:
                await _until_signalled(ready)
                return
            from orch_serv.api.dev import serve_beside

            resolved = config.model_copy(update={"amqp_url": amqp, "redis_url": redis})
            port = config.api_port if api_port is None else api_port
            async with serve_beside(
                running, resolved, host=config.api_host, port=port, auth=not insecure_no_auth
            ) as served:
                err.print(f"orch-serv dev: {served.banner()}", highlight=False)
                await _until_signalled(ready)

    run(main)
