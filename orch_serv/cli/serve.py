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
from orch_serv.loader import load
from orch_serv.orchestrator.app import Orchestrator
from orch_serv.service.definition import as_services
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
    if not isinstance(obj, Orchestrator):
        raise OrchServError(f"{path!r} is not an orch_serv Orchestrator (got {type(obj).__name__})")
    return obj


@app.command()
def orchestrator(
    app_path: Annotated[str, typer.Argument(metavar="APP", help="e.g. flows.ingest:orchestrator")],
) -> None:
    """Run an orchestrator replica for APP's flows until SIGTERM/SIGINT."""
    config = settings()

    async def main() -> None:
        orch = _orchestrator(app_path)
        async with orch.run(config):
            await _until_signalled()

    run(main)


@app.command()
def service(
    app_path: Annotated[
        str, typer.Argument(metavar="APP", help="e.g. services_examples.validator:service")
    ],
) -> None:
    """Host APP's service(s) until SIGTERM/SIGINT; SIGTERM drains in-flight handlers."""
    config = settings()

    async def main() -> None:
        services = as_services(load(app_path))
        async with open_backends(config) as (transport, store):
            workers = [ServiceWorker(s, transport, config, store=store) for s in services]
            for worker in workers:
                await worker.start()
            try:
                await _until_signalled()
            finally:
                await asyncio.gather(*(w.stop() for w in workers))

    run(main)


@app.command()
def dev(
    app_path: Annotated[str, typer.Argument(metavar="APP", help="e.g. flows.ingest:orchestrator")],
) -> None:
    """All-in-one: APP's orchestrator and its services in one process (development, demos)."""
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
        async with orch.run(config, with_services=True, embedded_default=True):
            await _until_signalled(
                f"orch-serv dev: flows {orch.get_list_flows()}, services "
                f"{[s.name for s in orch.services]}; Ctrl-C to stop"
            )

    run(main)
