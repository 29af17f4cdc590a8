"""The API beside an in-process orchestrator (``orch-serv dev``, the demo): it shares the
orchestrator's store and transport, so it also works on the embedded backends, and it is
protected by a fresh admin token that is revoked when it stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from orch_serv.api.app import create_app
from orch_serv.api.server import bound_url, serving
from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.orchestrator.app import Running
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore


@dataclass(frozen=True)
class DevApi:
    """Where the API listens and the token that opens it (None without authentication)."""

    url: str
    token: str | None

    def banner(self) -> str:
        """One line for the console."""
        if self.token is None:
            return f"API and dashboard: {self.url}/docs , {self.url}/ui (no authentication)"
        return (
            f"API and dashboard: {self.url}/docs , {self.url}/ui ; token (admin, revoked at "
            f"exit): {self.token}"
        )


@asynccontextmanager
async def serve_beside(
    running: Running, settings: Settings, *, host: str, port: int, auth: bool = True
) -> AsyncIterator[DevApi]:
    """Serve the API for ``running`` until the block ends."""
    store = running.store
    if not isinstance(store, RedisRunStore):
        raise TypeError("the API needs the Redis run store (redis:// or memory://)")
    tokens = TokenStore(store.redis, settings.key_prefix)
    token: str | None = None
    token_id: str | None = None
    if auth:
        token, info = await tokens.create("orch-serv dev", {Scope.admin})
        token_id = info.id
    app = create_app(settings, auth=auth, store=store, transport=running.transport)
    try:
        async with serving(app, host, port) as server:
            yield DevApi(bound_url(server), token)
    finally:
        if token_id is not None:
            await tokens.revoke(token_id)


__all__ = ["DevApi", "serve_beside"]
