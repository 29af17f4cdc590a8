"""An orchestrator replica as it announces itself, and what presence needs from a store (the
Redis implementation is ``replicas.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Replica:
    """One orchestrator replica as it announced itself."""

    replica_id: str
    names: frozenset[str]
    host: str
    pid: int
    seen: float


class Replicas(Protocol):
    """The replicas of one namespace (what :class:`~orch_serv.orchestrator.presence.Presence`
    needs from a store)."""

    async def announce(self, replica: Replica, *, ttl: float) -> None:
        """Record (or refresh) ``replica``."""

    async def withdraw(self, replica_id: str) -> None:
        """Forget a replica that stops."""

    async def live(self, *, now: float, seen_after: float) -> list[Replica]:
        """Replicas seen since ``seen_after``."""


__all__ = ["Replica", "Replicas"]
