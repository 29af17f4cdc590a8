"""Automatic pipelining of Lua script calls: every call made in the same turn of the event
loop goes to Redis in one pipeline (one write, one round trip), however many runs are being
advanced at once. Each call still is its own atomic script; only the transport is shared."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from orch_serv.store import resp


class ScriptPipeliner:
    """Batches ``EVALSHA`` calls per event-loop turn."""

    def __init__(self, client: aioredis.Redis, *, max_batch: int = 512) -> None:
        self._client = client
        self._max_batch = max_batch
        #: Packed by hand and sent on a pooled connection (:mod:`orch_serv.store.resp`), or
        #: through redis-py's pipeline (the embedded fakeredis client).
        self._direct = resp.supports(client)
        self._pending: list[tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]]
        self._pending = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def call(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run ``script`` (atomically, as always), sharing the round trip with its neighbours."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((script, keys, args, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._schedule)
        elif len(self._pending) >= self._max_batch:
            self._schedule()
        return await future

    def _schedule(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._flush(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(
        self, batch: list[tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]]
    ) -> None:
        if self._direct:
            await self._flush_direct(batch)
            return
        if len(batch) == 1:
            script, keys, args, future = batch[0]
            await self._single(script, keys, args, future)
            return
        pipe = self._client.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            # (redis-py's cluster pipeline refuses its evalsha method, not the command: it
            # sends each node its share of the batch)
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            _fail(batch, exc)
            return
        await self._settle(batch, results)

    async def _flush_direct(
        self, batch: list[tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]]
    ) -> None:
        try:
            packed = [resp.evalsha(script.sha, keys, args) for script, keys, args, _ in batch]
            results = await resp.run_packed(self._client, packed, len(batch))
        except (RedisError, OSError) as exc:
            _fail(batch, exc)
            return
        await self._settle(batch, results)

    async def _settle(
        self,
        batch: list[tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]],
        results: Sequence[Any],
    ) -> None:
        """Hand each call its result (a script Redis no longer has is loaded again)."""
        for (script, keys, args, future), result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                await self._single(script, keys, args, future)  # loads the script again
            elif isinstance(result, Exception):
                if not future.done():
                    future.set_exception(result)
            elif not future.done():
                future.set_result(result)

    @staticmethod
    async def _single(
        script: AsyncScript, keys: Sequence[Any], args: Sequence[Any], future: asyncio.Future[Any]
    ) -> None:
        try:
            result = await script(keys=list(keys), args=list(args))
        except (RedisError, OSError) as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)


def _fail(
    batch: list[tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]],
    exc: BaseException,
) -> None:
    """Every call of a batch whose round trip failed gets the error."""
    for *_, future in batch:
        if not future.done():
            future.set_exception(exc)
