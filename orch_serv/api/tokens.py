"""API tokens: bearer secrets with scopes, kept in Redis only as their SHA-256 hash.

A token reads ``osk_<id>_<secret>``: ``id`` names it in ``orch-serv token list|revoke``, the
secret is 32 random bytes. Redis holds ``{prefix}:api:tokens`` (hash: id -> JSON with the
secret's hash, name, scopes, creation time); the secret itself is shown once, at creation.
A presented token is checked by its id, then by comparing hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import orjson
import redis.asyncio as aioredis


class Scope(StrEnum):
    """What a token may do. ``admin`` implies every other scope."""

    read = "read"  #: runs, events, flows, dead letters, statuses (reading)
    start = "start"  #: start runs, create status instances
    operate = "operate"  #: cancel, retry, dead-letter replay/purge, set statuses
    admin = "admin"  #: manage tokens


TOKEN_PREFIX = "osk_"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token, without its secret."""

    id: str
    name: str
    scopes: frozenset[Scope]
    created: float
    digest: str = field(repr=False, default="")

    def allows(self, scope: Scope) -> bool:
        """True when the token carries ``scope`` (or ``admin``)."""
        return scope in self.scopes or Scope.admin in self.scopes

    def public(self) -> dict[str, Any]:
        """What ``token list`` shows."""
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(s.value for s in self.scopes),
            "created": self.created,
        }


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    ident, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not ident or not secret:
        return None
    return ident, secret


class TokenStore:
    """Create, list, revoke and check tokens in Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self.key = f"{prefix}:api:tokens"

    async def create(self, name: str, scopes: set[Scope]) -> tuple[str, TokenInfo]:
        """A new token: (the secret token, shown once; its stored info)."""
        if not name.strip():
            raise ValueError("a token needs a name")
        if not scopes:
            raise ValueError("a token needs at least one scope")
        ident = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        info = TokenInfo(ident, name, frozenset(scopes), time.time(), _digest(secret))
        record = {
            "name": name,
            "scopes": sorted(s.value for s in scopes),
            "created": info.created,
            "digest": info.digest,
        }
        await cast(Awaitable[int], self._redis.hset(self.key, ident, orjson.dumps(record).decode()))
        return f"{TOKEN_PREFIX}{ident}_{secret}", info

    async def list(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        raw = await cast(Awaitable[dict[Any, Any]], self._redis.hgetall(self.key))
        infos = [self._info(k.decode() if isinstance(k, bytes) else k, v) for k, v in raw.items()]
        return sorted(infos, key=lambda i: (i.created, i.id))

    async def revoke(self, ident: str) -> bool:
        """Delete a token by id (or by the whole token); False when there was none."""
        parts = _split(ident)
        removed = self._redis.hdel(self.key, parts[0] if parts else ident)
        return bool(await cast(Awaitable[int], removed))

    async def check(self, token: str) -> TokenInfo | None:
        """The token's info when ``token`` is valid, else None."""
        parts = _split(token)
        if parts is None:
            return None
        ident, secret = parts
        raw = await cast(Awaitable[bytes | None], self._redis.hget(self.key, ident))
        if raw is None:
            return None
        info = self._info(ident, raw)
        return info if hmac.compare_digest(info.digest, _digest(secret)) else None

    @staticmethod
    def _info(ident: str, raw: bytes | str) -> TokenInfo:
        data = orjson.loads(raw)
        return TokenInfo(
            ident,
            str(data["name"]),
            frozenset(Scope(s) for s in data["scopes"]),
            float(data["created"]),
            str(data["digest"]),
        )


__all__ = ["TOKEN_PREFIX", "Scope", "TokenInfo", "TokenStore"]
