"""``orch-serv status RUN_ID --watch``: follow a run live until it ends.

Every new event re-renders the view: on a terminal, the status table, the latest events and
what a stuck step waits for, redrawn in place; in a pipe, one line per new event and the
final status table; with ``--format json``, one JSON document per line (``{"run": ...,
"events": [the new ones]}``), the last one being the final status.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType

import orjson
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from orch_serv import render
from orch_serv.backends import open_store
from orch_serv.cli.common import EXIT_FAILED, Format, fail, out
from orch_serv.cli.probe import QueueProbe
from orch_serv.orchestrator.client import Client
from orch_serv.orchestrator.waiting import Waiting
from orch_serv.settings import Settings
from orch_serv.store.base import Event, RunRecord

#: Longest time between two looks at the run (its end is announced, and seen at once).
POLL_SECONDS = 0.5
#: Events the live view shows (the latest ones).
LIVE_EVENTS = 15


async def follow(config: Settings, run_id: str, fmt: Format, timeout: float | None) -> RunRecord:
    """Show the run, then again on each new event (or change of state, phase or waiting
    queue), until it is finished; returns the final record. Past ``timeout`` seconds, exits 1
    saying the run is still going."""
    loop = asyncio.get_running_loop()
    give_up = None if timeout is None else loop.time() + timeout
    store = await open_store(config)
    try:
        client = Client(None, store)
        async with QueueProbe(config) as probe:
            with _View(fmt) as view:
                return await _follow(client, probe, view, run_id, give_up, timeout)
    finally:
        await store.close()


async def _follow(
    client: Client,
    probe: QueueProbe,
    view: _View,
    run_id: str,
    give_up: float | None,
    timeout: float | None,
) -> RunRecord:
    loop = asyncio.get_running_loop()
    shown: tuple[object, ...] | None = None
    seen = 0
    while True:
        record = await client.get(run_id)
        events = await client.store.get_events(run_id)
        waiting = await probe.waiting(record, client.store)
        now = (len(events), record.state, record.phase, record.step, waiting)
        if now != shown:
            view.show(record, events, events[seen:], waiting)
            shown, seen = now, len(events)
        if record.done:
            view.finish(record)
            return record
        wait = POLL_SECONDS
        if give_up is not None:
            wait = min(wait, give_up - loop.time())
            if wait <= 0:
                raise fail(
                    f"run {run_id!r} is still {record.state.value} after {timeout:g} s",
                    EXIT_FAILED,
                )
        try:
            await client.wait(run_id, timeout=wait)
        except TimeoutError:
            pass


class _View:
    """Where the watch renders to: a live display on a terminal, else appended lines."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self.live: Live | None = None
        if fmt is Format.table and sys.stdout.isatty():
            self.live = Live(console=out, auto_refresh=False)

    def __enter__(self) -> _View:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.stop()

    def show(
        self, record: RunRecord, events: list[Event], new: list[Event], waiting: Waiting | None
    ) -> None:
        """Render the run after a change."""
        if self.fmt is Format.json:
            document = {
                "run": render.run_json(record, waiting),
                "events": [render.event_json(e) for e in new],
            }
            out.file.write(orjson.dumps(document).decode() + "\n")
            out.file.flush()
        elif self.live is not None:
            self.live.update(self._live_view(record, events, waiting), refresh=True)
        else:
            for event in new:
                out.print(render.event_line(event, record.steps_total), highlight=False)
            for line in render.waiting_lines(waiting) if waiting else []:
                out.print(line, highlight=False)

    def finish(self, record: RunRecord) -> None:
        """The final status (a pipe gets the status table after the event lines)."""
        if self.fmt is Format.table and self.live is None:
            out.print(render.status_table(record))

    @staticmethod
    def _live_view(
        record: RunRecord, events: list[Event], waiting: Waiting | None
    ) -> RenderableType:
        parts: list[RenderableType] = [
            render.status_table(record),
            render.history_table(record.run_id, events[-LIVE_EVENTS:], record.steps_total),
        ]
        parts.extend(Text(line) for line in (render.waiting_lines(waiting) if waiting else []))
        return Group(*parts)
