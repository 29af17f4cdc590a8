"""``orch-serv dlq``: the dead-letter queue (list, show, replay, purge).

Every command uses a transport that declares nothing, so a mistyped ``--namespace``
creates nothing (it is an error naming the namespace). ``replay`` and ``purge`` of given
ids check first that every id is in the queue: an unknown id is an error naming it, and
nothing is done. ``replay`` reports each letter that could not be replayed (it stays in the
queue) and then exits 1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import typer

from orch_serv import render
from orch_serv.backends import open_transport
from orch_serv.cli.app import app
from orch_serv.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Format, err, fail, out, run
from orch_serv.cli.common import settings as current_settings
from orch_serv.exceptions import DeadLetterNotFound
from orch_serv.transport.base import DeadLetter, Transport

dlq = typer.Typer(help="The dead-letter queue: messages the system could not handle.")
app.add_typer(dlq, name="dlq")

#: How many dead letters ``show``, ``replay`` and ``purge`` look through for an id.
SCAN = 100_000


@asynccontextmanager
async def _transport() -> AsyncIterator[Transport]:
    """A transport that declares nothing (the namespace must exist: letters are in it)."""
    transport = await open_transport(current_settings(), declare=False)
    try:
        yield transport
    finally:
        await transport.close()


@dlq.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(min=1, max=100000, help="At most this many.")] = 50,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """List dead letters (oldest first) with the reason each is there."""

    async def main() -> list[DeadLetter]:
        async with _transport() as transport:
            return await transport.dead_letters(limit)

    letters = run(main)
    if fmt is Format.json:
        out.print_json(render.dumps([render.dead_json(d) for d in letters]))
    else:
        out.print(render.dead_table(letters))


@dlq.command("show")
def dlq_show(message_id: Annotated[str, typer.Argument(help="Dead-letter id.")]) -> None:
    """Show one dead letter with its headers and body."""

    async def main() -> DeadLetter:
        async with _transport() as transport:
            letters = await transport.dead_letters(SCAN)
        for letter in letters:
            if letter.message_id == message_id:
                return letter
        raise DeadLetterNotFound(f"dead letter {message_id!r} not found")

    out.print_json(render.dumps(render.dead_json(run(main), full=True)))


_IDS = typer.Argument(help="Dead-letter ids; none with --all.")


@dlq.command("replay")
def dlq_replay(
    message_ids: Annotated[list[str] | None, _IDS] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Publish dead letters again to where they came from; exit 1 if any could not be."""
    ids = _wanted(message_ids, all_)

    async def main() -> int:
        async with _transport() as transport:
            await _check_known(transport, ids)
            result = await transport.replay_dead_letters(ids)
        out.print(f"replayed {len(result.replayed)} dead letter(s)", highlight=False)
        for failure in result.failed:
            err.print(
                f"error: dead letter {failure.message_id!r} was not replayed (it stays in "
                f"the queue): {failure.reason}",
                highlight=False,
            )
        for missing in result.missing:
            err.print(f"error: dead letter {missing!r} not found", highlight=False)
        return EXIT_OK if result.ok else EXIT_FAILED

    raise typer.Exit(run(main))


@dlq.command("purge")
def dlq_purge(
    message_ids: Annotated[list[str] | None, _IDS] = None,
    all_: Annotated[bool, typer.Option("--all", help="Drop every dead letter.")] = False,
) -> None:
    """Drop dead letters for good."""
    ids = _wanted(message_ids, all_)

    async def main() -> int:
        async with _transport() as transport:
            await _check_known(transport, ids)
            purged = await transport.purge_dead_letters(ids)
        out.print(f"purged {purged} dead letter(s)", highlight=False)
        if ids is not None and purged < len(ids):  # taken away by someone else meanwhile
            missed = len(ids) - purged
            err.print(f"error: {missed} of the given ids were not purged", highlight=False)
            return EXIT_FAILED
        return EXIT_OK

    raise typer.Exit(run(main))


def _wanted(message_ids: list[str] | None, all_: bool) -> list[str] | None:
    """The ids to act on (None: all); neither ids nor --all (or both) is a usage error."""
    if not message_ids and not all_:
        raise fail("give dead-letter ids, or --all", EXIT_USAGE)
    if message_ids and all_:
        raise fail("give dead-letter ids or --all, not both", EXIT_USAGE)
    return None if all_ else list(dict.fromkeys(message_ids or []))


async def _check_known(transport: Transport, ids: list[str] | None) -> None:
    """Refuse ids that are not in the dead-letter queue, before anything is done."""
    if ids is None:
        return
    present = {d.message_id for d in await transport.dead_letters(SCAN)}
    unknown = [i for i in ids if i not in present]
    if unknown:
        listed = ", ".join(repr(i) for i in unknown)
        raise DeadLetterNotFound(
            f"dead letter{'s' if len(unknown) > 1 else ''} {listed} not found; nothing was done"
        )
