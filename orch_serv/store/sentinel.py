"""Redis behind Sentinel: ``redis+sentinel://`` URLs and the client that follows the primary.

::

    redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB][?sentinel_password=PW]

names the Sentinels (port 26379 when left out), the monitored service (the ``sentinel
monitor`` name) and the database; the password is the data nodes' (``sentinel_password``, if
the Sentinels need one of their own). ``rediss+sentinel://`` speaks TLS to the data nodes.
The client is redis-py's own (``redis.asyncio.sentinel``): it asks the Sentinels for the
primary before each new connection and drops its connections when the primary changes, so
after a failover the next calls go to the promoted replica (a call in flight at that moment
fails with a store error, which the engine and the services already retry: the message is
given back or redelivered).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from orch_serv.urls import parse_sentinel_url


class _Primary(aioredis.Redis):
    """The client of the primary; closing it closes the Sentinel connections too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        await super().aclose(close_connection_pool)
        if isinstance(manager, Sentinel):
            for sentinel in manager.sentinels:
                await sentinel.aclose()


def sentinel_client(url: str, **options: Any) -> aioredis.Redis:
    """A client of the primary the Sentinels of ``url`` name (``options``: redis-py's
    connection options, e.g. ``decode_responses``, ``socket_connect_timeout``)."""
    parsed = parse_sentinel_url(url)
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel_options: dict[str, Any] = dict(timeouts)
    if parsed.sentinel_password is not None:
        sentinel_options["password"] = parsed.sentinel_password
    manager = Sentinel(  # type: ignore[no-untyped-call]
        list(parsed.sentinels), sentinel_kwargs=sentinel_options
    )
    client: aioredis.Redis = manager.master_for(
        parsed.service,
        redis_class=_Primary,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        **options,
    )
    return client


__all__ = ["sentinel_client"]
