"""The dead-letter queue on RabbitMQ: list, replay and purge, letter by letter.

Letters are taken off the queue with ``basic.get`` (unacked) on a channel of their own; a
letter is acked (removed) only once it is replayed or purged, and closing the channel gives
every other one back, in place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from orch_serv.exceptions import PublishError, TransportError
from orch_serv.transport.base import DeadLetter, ReplayFailure, ReplayResult, Topology
from orch_serv.transport.deadletters import read_dead_letter, replay_headers, replay_route
from orch_serv.transport.rabbit_delivery import AMQP_ERRORS

#: (exchange name, routing key, body, message id, headers, kind) -> awaits the confirm
Publish = Callable[[str, str, bytes, str, Mapping[str, Any] | None, str | None], Awaitable[None]]

#: How many letters one replay or purge looks at.
DEAD_SCAN = 100_000


class RabbitDeadLetters:
    """The operations on one namespace's dead-letter queue."""

    def __init__(
        self, connection: AbstractRobustConnection, topology: Topology, publish: Publish
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._publish = publish

    async def _take(self, limit: int) -> tuple[AbstractChannel, list[AbstractIncomingMessage]]:
        channel = await self._connection.channel(publisher_confirms=False)
        queue = await channel.get_queue(self._topology.dead_letter_queue, ensure=True)
        taken: list[AbstractIncomingMessage] = []
        while len(taken) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append(message)
        return channel, taken

    async def list(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; they stay in the queue."""
        try:
            channel, taken = await self._take(limit)
            try:
                return [read(m) for m in taken]
            finally:
                await channel.close()  # every taken message goes back, in its place
        except AMQP_ERRORS as exc:
            raise TransportError(f"cannot read the dead-letter queue: {exc}") from exc

    async def replay(self, message_ids: Sequence[str] | None) -> ReplayResult:
        """Publish letters again to the queue they came from, one by one; a letter that
        cannot be published stays, and is reported, while the others go on."""
        wanted = set(message_ids) if message_ids is not None else None
        replayed: list[str] = []
        failed: list[ReplayFailure] = []
        seen: set[str] = set()
        try:
            channel, taken = await self._take(DEAD_SCAN)
            try:
                for message in taken:
                    letter = read(message)
                    if wanted is not None and letter.message_id not in wanted:
                        continue
                    seen.add(letter.message_id)
                    why = await self._replay_one(message, letter)
                    if why is None:
                        replayed.append(letter.message_id)
                    else:
                        failed.append(ReplayFailure(letter.message_id, why))
            finally:
                await channel.close()
        except AMQP_ERRORS as exc:
            raise TransportError(f"cannot replay dead letters: {exc}") from exc
        missing = tuple(dict.fromkeys(i for i in message_ids or () if i not in seen))
        return ReplayResult(tuple(replayed), tuple(failed), missing)

    async def _replay_one(self, message: AbstractIncomingMessage, letter: DeadLetter) -> str | None:
        """None once replayed and removed; else why not (the letter stays)."""
        exchange, routing_key = replay_route(letter, self._topology)
        try:
            await self._publish(
                exchange,
                routing_key,
                letter.body,
                message.message_id or letter.message_id,
                replay_headers(letter.headers),
                letter.kind,
            )
        except PublishError as exc:
            return exc.message
        try:
            await message.ack()
        except AMQP_ERRORS as exc:
            return f"replayed, but not removed from the dead-letter queue ({exc})"
        return None

    async def purge(self, message_ids: Sequence[str] | None) -> int:
        """Remove letters (all, or those ids); how many."""
        wanted = set(message_ids) if message_ids is not None else None
        purged = 0
        try:
            channel, taken = await self._take(DEAD_SCAN)
            try:
                for message in taken:
                    if wanted is None or read(message).message_id in wanted:
                        await message.ack()
                        purged += 1
            finally:
                await channel.close()
        except AMQP_ERRORS as exc:
            raise TransportError(f"cannot purge dead letters: {exc}") from exc
        return purged


def read(message: AbstractIncomingMessage) -> DeadLetter:
    """A message of the dead-letter queue, as a :class:`DeadLetter`."""
    return read_dead_letter(
        message.headers or {},
        message_id=message.message_id,
        routing_key=message.routing_key or "",
        kind=message.type,
        body=message.body,
    )
