"""One namespace, one application: an orchestrator refuses to start beside live replicas of
another application, and announces itself while it runs.

All orchestrators of a namespace consume one queue. Replicas of the same application (and a
rolling upgrade that adds or removes flows) can share it: whatever one of them receives, it can
run, from its own code or from the definitions in Redis. Two different applications cannot: each
would take the other's starts and replies and fail them. So an orchestrator whose flows and blocks
are neither a subset nor a superset of a live replica's refuses to start with
:class:`~orch_serv.exceptions.NamespaceConflict`, naming the other application and the way out
(another ``--namespace``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterable

from orch_serv.background import Background
from orch_serv.exceptions import NamespaceConflict, StoreError
from orch_serv.logs import get_logger
from orch_serv.store.replica import Replica, Replicas

log = get_logger("orchestrator")


def app_names(flows: Iterable[str], blocks: Iterable[str]) -> frozenset[str]:
    """What an application serves, as ``flow:<name>`` and ``block:<name>``."""
    return frozenset([*(f"flow:{n}" for n in flows), *(f"block:{n}" for n in blocks)])


def conflicts(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    """Two applications conflict when neither serves everything the other does."""
    return not (mine <= theirs or theirs <= mine)


class Presence:
    """Announces this replica every ``interval`` seconds; refuses a conflicting start."""

    def __init__(
        self,
        replicas: Replicas,
        names: frozenset[str],
        *,
        namespace: str,
        clock: Callable[[], float],
        interval: float,
    ) -> None:
        self._replicas = replicas
        self.names = names
        self.namespace = namespace
        self._clock = clock
        self.interval = interval
        self.replica_id = uuid.uuid4().hex[:12]
        self._task = Background(self._refresh, "orch_serv-presence")

    @property
    def horizon(self) -> float:
        """A replica not seen for this long is taken for dead."""
        return 3 * self.interval

    def _me(self) -> Replica:
        return Replica(
            self.replica_id, self.names, socket.gethostname(), os.getpid(), self._clock()
        )

    async def check_and_announce(self) -> None:
        """Raise :class:`NamespaceConflict` if a live replica serves another application;
        otherwise announce this one. (Two conflicting apps starting in the same instant can
        both pass; the next announcement of either logs the conflict.)"""
        now = self._clock()
        for other in await self._replicas.live(now=now, seen_after=now - self.horizon):
            if other.replica_id != self.replica_id and conflicts(self.names, other.names):
                raise NamespaceConflict(_conflict_message(self, other, now))
        await self._replicas.announce(self._me(), ttl=self.horizon)

    async def live_count(self) -> int:
        """How many replicas of the namespace are alive (this one included once announced)."""
        now = self._clock()
        return len(await self._replicas.live(now=now, seen_after=now - self.horizon))

    def start(self) -> None:
        """Refresh the announcement in the background."""
        self._task.start()

    async def stop(self) -> None:
        """Stop refreshing and withdraw; idempotent."""
        if await self._task.stop():
            with contextlib.suppress(StoreError):
                await self._replicas.withdraw(self.replica_id)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_and_announce()
            except NamespaceConflict as exc:
                log.error("namespace_conflict", reason=exc.message)
                with contextlib.suppress(StoreError):
                    await self._replicas.announce(self._me(), ttl=self.horizon)
            except StoreError:
                log.warning("presence_refresh_failed", exc_info=True)


def _conflict_message(me: Presence, other: Replica, now: float) -> str:
    theirs = sorted(other.names - me.names)
    mine = sorted(me.names - other.names)
    return (
        f"namespace {me.namespace!r} is served by another application (replica on "
        f"{other.host} pid {other.pid}, seen {max(0.0, now - other.seen):.0f}s ago) that has "
        f"{', '.join(theirs[:5])}{' ...' if len(theirs) > 5 else ''} but not "
        f"{', '.join(mine[:5])}{' ...' if len(mine) > 5 else ''}: two applications in one "
        "namespace would take each other's messages. Give this one its own namespace "
        "(--namespace or ORCH_SERV_NAMESPACE); if that replica is gone, its entry expires "
        f"within {me.horizon:.0f}s."
    )


__all__ = ["Presence", "app_names", "conflicts"]
