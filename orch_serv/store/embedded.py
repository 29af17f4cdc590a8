"""The embedded store backend: fakeredis running the very same Lua scripts in-process.

Clients opened on the same ``memory://NAME`` URL share one fake server, so an orchestrator,
its services and a client in one process see the same runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import fakeredis

_SERVERS: dict[str, fakeredis.FakeServer] = {}


def embedded_client(url: str = "memory://") -> fakeredis.FakeAsyncRedis:
    """An async client of the process-wide fake server named by ``url`` (fakeredis is
    imported on first use: only the embedded mode needs it)."""
    import fakeredis

    name = url.removeprefix("memory://").strip("/") or "default"
    server = _SERVERS.setdefault(name, fakeredis.FakeServer())
    return fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
