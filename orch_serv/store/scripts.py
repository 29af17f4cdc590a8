"""Registered Lua scripts that survive a server that lost them.

redis-py's script object answers a ``NOSCRIPT`` by loading the script and calling it again by
its SHA. On a Redis Cluster that is not always enough: after a failover the promoted replica
has an empty script cache, and until the client re-reads the slot map, ``SCRIPT LOAD`` goes to
the nodes it still takes for the primaries, so the second call fails the same way (seen in
tests/cluster/test_redis_cluster.py: every timer claim failed for as long as the map was
stale). Here the last resort is ``EVAL`` with the script's text: it is routed by its keys like
any command, runs on the node that owns them, and caches the script there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


class Script(AsyncScript):
    """A script registered on a client: ``await script(keys=[...], args=[...])``."""

    async def __call__(
        self,
        keys: Sequence[Any] | None = None,
        args: Iterable[Any] | None = None,
        client: aioredis.Redis | None = None,
    ) -> Any:
        """Run the script (by SHA; by its text when the server does not have it)."""
        try:
            return await super().__call__(keys, args, client)
        except NoScriptError:
            target = client if client is not None else self.registered_client
            given = list(keys or ())
            text = str(self.script)
            return await cast(Awaitable[Any], target.eval(text, len(given), *given, *(args or ())))


def register(client: aioredis.Redis, text: str) -> Script:
    """``client.register_script(text)``, with the fallback above."""
    return Script(client, text)


__all__ = ["Script", "register"]
