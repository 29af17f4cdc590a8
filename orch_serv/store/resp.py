"""Script calls written to Redis directly: the RESP packing and the pipeline the
:class:`~orch_serv.store.pipeliner.ScriptPipeliner` uses on a real Redis connection.

redis-py packs each argument through its ``Encoder`` and joins the packet again for every
argument (quadratic in the arguments of one command); with a transition's thirty-odd
arguments that was about a tenth of the orchestrator's CPU under load. :func:`pack` builds
the same bytes in one join; :func:`run_packed` sends a batch of packed calls on one pooled
connection and reads one reply per call, as redis-py's own pipeline does, without its
per-command bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError, ResponseError


def pack(args: Sequence[Any]) -> bytes:
    """One command in the Redis protocol: str (UTF-8), bytes, int and float arguments, as
    redis-py's encoder takes them (a bool, None or anything else raises DataError)."""
    return b"*%d\r\n%b" % (len(args), _bulk(args))


def _bulk(args: Iterable[Any]) -> bytes:
    """The bulk strings of ``args``, one after the other."""
    parts: list[bytes] = []
    append = parts.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()
        elif kind is bytes:
            data = arg
        elif kind is int or kind is float:
            data = repr(arg).encode()
        else:
            raise DataError(f"invalid input of type {kind.__name__!r} for a Redis argument")
        append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


#: The packed ``EVALSHA sha numkeys`` of each (script, number of keys) seen.
_HEADS: dict[tuple[str, int], bytes] = {}


def evalsha(sha: str, keys: Sequence[Any], args: Sequence[Any]) -> bytes:
    """``EVALSHA sha numkeys keys... args...``, packed."""
    head = _HEADS.get((sha, len(keys)))
    if head is None:
        if len(_HEADS) > 1000:  # scripts are few; never grow without bound
            _HEADS.clear()
        head = _HEADS[sha, len(keys)] = _bulk(("EVALSHA", sha, len(keys)))
    return b"*%d\r\n%b%b%b" % (3 + len(keys) + len(args), head, _bulk(keys), _bulk(args))


def supports(client: Any) -> bool:
    """True for a redis-py client on a real connection (the embedded fakeredis client goes
    through redis-py's own pipeline)."""
    if not isinstance(client, aioredis.Redis):
        return False
    connection_class = getattr(client.connection_pool, "connection_class", None)
    return (
        isinstance(connection_class, type)
        and issubclass(connection_class, AbstractConnection)
        and connection_class.__module__.startswith("redis.")
    )


async def run_packed(client: aioredis.Redis, packed: Iterable[bytes], count: int) -> list[Any]:
    """Send ``count`` packed commands at once on one pooled connection; their replies in
    order, an error reply as its ``ResponseError`` (NoScriptError included). A connection
    error raises; the connection is then dropped, so that no reply is read by another."""
    pool = client.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await connection.send_packed_command(b"".join(packed))
        replies: list[Any] = []
        for _ in range(count):
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        await connection.disconnect(nowait=True)  # replies may still be on their way
        raise
    finally:
        await pool.release(connection)


__all__ = ["evalsha", "pack", "run_packed", "supports"]
