"""Run the example pipeline on every sample CSV, all in one process.

    python -m services_examples.demo [--serve | --no-serve] [--host H] [--port P]

Starts the orchestrator and the three services in this process (``with_services=True``),
starts one ``ingest`` run per sample file plus one ``profile`` run, shows a progress bar, then
a table of how each run ended and the URL of the operators' dashboard. Connection settings
come from the ``ORCH_SERV_*`` environment variables; the namespace and key prefix default to
``orch_serv_demo``.

With ``--serve`` (the default when run interactively: standard input and output are a
terminal and ``CI`` is not set) it then keeps serving the dashboard and the HTTP API on
``http://127.0.0.1:8000`` (without authentication: local use only) over the same backends,
with the orchestrator still running, until Ctrl-C. The exit code is 0 only when every run
succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.ingest import orchestrator
from orch_serv import EventKind, Running, RunRecord, RunState, Settings
from orch_serv.logs import configure_logging
from orch_serv.store.redis import RedisRunStore
from services_examples import DATA_DIR

#: The sample the ``profile`` run looks at.
PROFILED = "air_quality_readings"
WAIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run ended, with the number of steps it completed."""

    record: RunRecord
    steps_done: int


def demo_settings() -> Settings:
    """Settings from the environment, with the demo's own namespace and key prefix unless
    ``ORCH_SERV_NAMESPACE`` / ``ORCH_SERV_KEY_PREFIX`` say otherwise."""
    return Settings(
        namespace=os.environ.get("ORCH_SERV_NAMESPACE", "orch_serv_demo"),
        key_prefix=os.environ.get("ORCH_SERV_KEY_PREFIX", "orch_serv_demo"),
    )


def summarise(record: RunRecord) -> str:
    """One line about a run's result (or error)."""
    if record.error is not None:
        return f"[red]{escape(record.error.type)}[/]: {escape(record.error.message)}"
    result: Any = record.result
    if not isinstance(result, dict):
        return escape(repr(result))
    dataset = result.get("dataset_id", "?")
    if "sha256" in result:
        return escape(f"{dataset}: {result['rows']} rows -> {Path(result['path']).name}")
    if "columns" in result:
        numeric = sum(1 for c in result["columns"] if c["numeric"])
        columns = len(result["columns"])
        return escape(f"{dataset}: {result['rows']} rows, {columns} columns ({numeric} numeric)")
    return escape(", ".join(f"{k}={v}" for k, v in list(result.items())[:3]))


async def follow(running: Running, run_id: str) -> Outcome:
    """Wait for a run to finish and count its completed steps."""
    record = await running.wait(run_id, timeout=WAIT_SECONDS)
    events = await running.events(run_id)
    done = sum(1 for e in events if e.kind is EventKind.STEP_COMPLETED)
    return Outcome(record, done)


def published_files(workdir: Path) -> list[str]:
    """The files under ``<workdir>/published``, relative to ``workdir``."""
    return sorted(str(p.relative_to(workdir)) for p in workdir.glob("published/*/*"))


def render(outcomes: list[Outcome]) -> Table:
    """The final status of every run as a rich table."""
    table = Table(
        title="orch_serv demo: dataset ingestion",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("run id", no_wrap=True)
    table.add_column("flow", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("result", overflow="fold")
    for outcome in outcomes:
        record = outcome.record
        colour = "green" if record.state is RunState.SUCCEEDED else "red"
        finished = record.finished_at or record.updated_at
        table.add_row(
            record.run_id[:8],
            record.flow,
            f"[{colour}]{record.state.value}[/]",
            f"{outcome.steps_done}/{record.steps_total}",
            f"{(finished - record.created_at) * 1000:.0f} ms",
            summarise(record),
        )
    return table


def interactive() -> bool:
    """True when a person runs the demo in a terminal (and not in CI)."""
    return sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("CI")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The demo's options."""
    parser = argparse.ArgumentParser(
        prog="python -m services_examples.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep serving the dashboard until Ctrl-C (default: when run interactively)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="dashboard address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="dashboard port (8000; 0: any)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.serve is None:
        args.serve = interactive()
    return args


async def serve_dashboard(console: Console, running: Running, host: str, port: int) -> None:
    """Serve the dashboard and the API over the demo's backends until SIGINT or SIGTERM."""
    from orch_serv.api.app import create_app
    from orch_serv.api.server import bound_url, serving

    store, transport = running.store, running.transport
    assert isinstance(store, RedisRunStore) and transport is not None
    settings = running.engine.settings
    app = create_app(settings, auth=False, store=store, transport=transport)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(app, host, port) as server:
            url = f"{bound_url(server)}/ui"
            console.print(
                f"Dashboard: [bold]{url}[/] (no login: local use only; Ctrl-C to stop)",
                highlight=False,
            )
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    console.print("dashboard stopped")


def dashboard_hint(console: Console, settings: Settings, port: int) -> None:
    """How to see the runs in a browser when the demo does not serve them itself."""
    amqp, _ = settings.urls(embedded_default=True)
    console.print(
        f"Dashboard: http://127.0.0.1:{port}/ui — run `python -m services_examples.demo "
        "--serve` to browse these runs there until Ctrl-C"
        + (
            ""
            if amqp.startswith("memory://")
            else " (or `orch-serv api --insecure-no-auth` with the same ORCH_SERV_* settings)"
        ),
        highlight=False,
    )


async def run_demo(
    console: Console, *, serve: bool = False, host: str = "127.0.0.1", port: int = 8000
) -> bool:
    """Run the pipeline on copies of the sample files; True when every run succeeded. With
    ``serve``, then serve the dashboard over the same backends until Ctrl-C."""
    samples = sorted(DATA_DIR.glob("*.csv"))
    settings = demo_settings()
    with tempfile.TemporaryDirectory(prefix="orch_serv_demo_") as tmp:
        workdir = Path(tmp)
        incoming = workdir / "incoming"
        incoming.mkdir()
        for sample in samples:
            shutil.copy(sample, incoming / sample.name)
        amqp, redis = settings.urls(embedded_default=True)
        where = (
            "on the embedded in-memory backends (set ORCH_SERV_AMQP_URL and "
            "ORCH_SERV_REDIS_URL to use RabbitMQ and Redis)"
            if amqp.startswith("memory://") and redis.startswith("memory://")
            else f"on {amqp.split('@')[-1]} and {redis}"
        )
        console.print(f"Running {len(samples)} ingest runs and 1 profile run in {workdir} {where}")
        async with orchestrator.run(settings, with_services=True, embedded_default=True) as running:
            run_ids = []
            for sample in samples:
                body = {
                    "dataset_id": sample.stem,
                    "path": str(incoming / sample.name),
                    "workdir": str(workdir),
                }
                run_ids.append(await running.start("ingest", body))
                if sample.stem == PROFILED:
                    run_ids.append(await running.start("profile", body))
            with Progress(
                TextColumn("[bold]waiting for runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("runs", total=len(run_ids))
                pending = [asyncio.ensure_future(follow(running, r)) for r in run_ids]
                for future in asyncio.as_completed(pending):
                    await future
                    progress.advance(task)
            outcomes = [f.result() for f in pending]
            console.print(render(outcomes))
            console.print("Published files:", *published_files(workdir), sep="\n  ")
            ok = all(o.record.state is RunState.SUCCEEDED for o in outcomes)
            console.print("[green]every run succeeded[/]" if ok else "[red]some runs failed[/]")
            if serve:
                await serve_dashboard(console, running, host, port)
            else:
                dashboard_hint(console, settings, port)
    return ok


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m services_examples.demo``; returns the exit code."""
    args = parse_args(argv)
    configure_logging("WARNING")
    console = Console()
    try:
        ok = asyncio.run(run_demo(console, serve=args.serve, host=args.host, port=args.port))
    except TimeoutError:
        console.print(f"[red]a run did not finish within {WAIT_SECONDS:.0f} s[/]")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
