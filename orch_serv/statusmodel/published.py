"""Status models published to Redis, as flow definitions are: ``{prefix}:models`` holds the
current version of each model by name, ``{prefix}:models:versions`` every version ever
published (instances pin the version they were created under). The built-in models
(``2-POINT LINE TASK``) are found even when nobody published them."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orch_serv.exceptions import StoreError
from orch_serv.statusmodel.model import BUILTIN_MODELS, StatusModel
from orch_serv.store.keys import Keys


class PublishedModels:
    """Publish and read status models (versions are cached: they never change)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self.keys = Keys(prefix)
        self._versions: dict[tuple[str, str], StatusModel] = {
            (m.name, m.version): m for m in BUILTIN_MODELS.values()
        }

    async def publish(self, models: Sequence[StatusModel]) -> None:
        """Make ``models`` the current versions of their names: every version is written
        first, then the current ones (two keys of different Redis Cluster slots, in order)."""
        if not models:
            return
        try:
            await cast(
                Awaitable[int],
                self._redis.hset(
                    self.keys.model_versions,
                    mapping={f"{m.name}:{m.version}": m.to_json() for m in models},
                ),
            )
            await cast(
                Awaitable[int],
                self._redis.hset(self.keys.models, mapping={m.name: m.to_json() for m in models}),
            )
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis publish_models failed: {exc}") from exc
        for model in models:
            self._versions[(model.name, model.version)] = model

    async def get(self, name: str, version: str | None = None) -> StatusModel | None:
        """The current model called ``name`` (or that version of it), or None."""
        if version and (name, version) in self._versions:
            return self._versions[(name, version)]
        try:
            if version:
                raw = await cast(
                    Awaitable[str | bytes | None],
                    self._redis.hget(self.keys.model_versions, f"{name}:{version}"),
                )
            else:
                raw = await cast(
                    Awaitable[str | bytes | None], self._redis.hget(self.keys.models, name)
                )
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis get_model failed: {exc}") from exc
        if raw is None:
            builtin = BUILTIN_MODELS.get(name)
            return builtin if builtin and (not version or builtin.version == version) else None
        model = StatusModel.model_validate_json(raw)
        self._versions[(model.name, model.version)] = model
        return model

    async def list(self) -> list[StatusModel]:
        """Every current model (the built-in ones included), by name."""
        try:
            raw = await cast(Awaitable[list[str | bytes]], self._redis.hvals(self.keys.models))
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis list_models failed: {exc}") from exc
        found = {m.name: m for m in (StatusModel.model_validate_json(r) for r in raw)}
        for name, model in BUILTIN_MODELS.items():
            found.setdefault(name, model)
        return [found[name] for name in sorted(found)]


__all__ = ["PublishedModels"]
