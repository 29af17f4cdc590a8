"""Chart stores on the embedded store (fakeredis, the same Lua) and on the real Redis, each on a
key prefix of its own (deleted after the test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orch_serv.store.charts import ChartStore
from orch_serv.store.redis import RedisRunStore
from tests.conftest import REDIS_URL, unique_name


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A test-driven clock (2027-01-15)."""
    return Clock()


@pytest_asyncio.fixture(params=["embedded", "real"])
async def run_store(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[RedisRunStore]:
    """A run store on fakeredis or on the real Redis (own prefix, cleaned up)."""
    prefix = unique_name("charts")
    url = f"memory://{uuid.uuid4().hex}" if request.param == "embedded" else REDIS_URL
    store = await RedisRunStore.connect(url, prefix=prefix, clock=clock)
    try:
        yield store
    finally:
        keys = [k async for k in store.redis.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await store.redis.delete(*keys)
        await store.close()


@pytest.fixture
def charts(run_store: RedisRunStore) -> ChartStore:
    """The charts of ``run_store``."""
    return ChartStore.of(run_store)
