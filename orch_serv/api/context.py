"""What every part of the HTTP API shares: settings, the backends (connected lazily and
again after a failure, so the server starts and answers 503 while Redis or RabbitMQ is down),
the token store, and the authentication dependency.

The native API and each compatibility surface are separate FastAPI applications mounted on
one root; they share one :class:`ApiContext`, and each renders :class:`AuthError` in its own
error shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from fastapi import Request

from orch_serv.api.tokens import Scope, TokenInfo, TokenStore
from orch_serv.orchestrator.client import Client
from orch_serv.settings import Settings
from orch_serv.transport.base import Transport

if TYPE_CHECKING:
    from orch_serv.store.redis import RedisRunStore

#: Every scope: what a request carries when the server runs with ``--insecure-no-auth``.
ALL_SCOPES = frozenset(Scope)
INSECURE = TokenInfo("insecure", "insecure-no-auth", ALL_SCOPES, 0.0)


class AuthError(Exception):
    """The request is not authenticated (401) or lacks a scope (403)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        """``WWW-Authenticate`` on a 401."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


@dataclass
class Backends:
    """The store and the transport, opened on first use; a failed open is retried by the
    next request. Given ones (``orch-serv dev``) are used as they are and never closed."""

    settings: Settings
    store_given: RedisRunStore | None = None
    transport_given: Transport | None = None

    def __post_init__(self) -> None:
        self._store = self.store_given
        self._transport = self.transport_given
        self._lock = asyncio.Lock()

    async def store(self) -> RedisRunStore:
        """The run store (raises :class:`StoreError` while Redis does not answer)."""
        if self._store is None:
            async with self._lock:
                if self._store is None:
                    from orch_serv.backends import open_store

                    self._store = await open_store(self.settings)
        return self._store

    async def transport(self) -> Transport:
        """The transport (raises :class:`TransportError` while RabbitMQ does not answer). It
        declares the namespace's topology, as ``orch-serv start`` does."""
        if self._transport is None:
            async with self._lock:
                if self._transport is None:
                    from orch_serv.backends import open_transport

                    self._transport = await open_transport(self.settings)
        return self._transport

    async def client(self, *, with_transport: bool = True) -> Client:
        """A client over the store (and the transport, to start, cancel or retry)."""
        transport = await self.transport() if with_transport else None
        return Client(
            transport, await self.store(), max_message_bytes=self.settings.max_message_bytes
        )

    async def readiness(self) -> dict[str, str]:
        """``ok`` or the reason, per backend."""
        result: dict[str, str] = {}
        try:
            await cast(Awaitable[bool], (await self.store()).redis.ping())
            result["redis"] = "ok"
        except Exception as exc:  # whatever failed is the reason to report
            result["redis"] = f"unavailable: {exc}"
        try:
            transport = await self.transport()
            stats = await transport.queue_stats(transport.topology.dead_letter_queue)
            result["rabbitmq"] = "ok" if stats is not None else "dead-letter queue is missing"
        except Exception as exc:
            result["rabbitmq"] = f"unavailable: {exc}"
        return result

    async def close(self) -> None:
        """Close what this object opened."""
        if self._transport is not None and self._transport is not self.transport_given:
            await self._transport.close()
        if self._store is not None and self._store is not self.store_given:
            await self._store.close()


@dataclass
class ApiContext:
    """Shared by the root application and every mounted surface."""

    settings: Settings
    backends: Backends
    auth: bool = True

    async def tokens(self) -> TokenStore:
        """The token store (in the run store's Redis)."""
        store = await self.backends.store()
        return TokenStore(store.redis, self.settings.key_prefix)

    async def authenticate(self, request: Request) -> TokenInfo:
        """The caller's token, or :class:`AuthError` 401 (checked once per request: the
        router's dependency, the scope's and the routes that authenticate before reading
        a body share the answer)."""
        if not self.auth:
            return INSECURE
        known = getattr(request.state, "orch_serv_token", None)
        if isinstance(known, TokenInfo):
            return known
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "a bearer token is required (Authorization: Bearer <token>)")
        info = await (await self.tokens()).check(token.strip())
        if info is None:
            raise AuthError(401, "the bearer token is not valid")
        request.state.orch_serv_token = info
        return info

    def require(self, scope: Scope) -> Callable[[Request], Awaitable[TokenInfo]]:
        """A dependency: the caller's token when it carries ``scope``, else 401 / 403."""

        async def dependency(request: Request) -> TokenInfo:
            info = await self.authenticate(request)
            if not info.allows(scope):
                raise AuthError(403, f"the token lacks the '{scope.value}' scope")
            return info

        return dependency


__all__ = ["ALL_SCOPES", "INSECURE", "ApiContext", "AuthError", "Backends"]
