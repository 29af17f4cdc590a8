"""The store contract suites, unchanged, on the local Redis Cluster: every script call of the
run store touches one shard's hash slot, so none fails with CROSSSLOT, and what reads across
shards (listings, path lookups, timers) merges them.

The test functions are the ones of the embedded/single-Redis suites (imported by name); only
the fixtures they ask for are defined here, on the cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orch_serv.settings import Settings
from orch_serv.store.charts import ChartStore
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.statuses import StatusStore
from tests.api import test_oslo_store as _oslo
from tests.charts import test_store as _charts
from tests.charts.conftest import Clock
from tests.cluster.cluster_stores import cluster_store
from tests.contract import test_shards as _shards
from tests.contract import test_store as _contract
from tests.statusmodel import test_store as _statuses

# redis-py's cluster client drops the node objects of a slot map it re-reads (after a
# failover of an earlier test, a MOVED) without closing their pooled connections.
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning"),
]

for _module in (_contract, _shards, _oslo, _statuses, _charts):
    for _name in dir(_module):
        if _name.startswith("test_"):
            suite = _module.__name__.rsplit(".", 2)[-2]
            globals()[f"{_name}__{suite}"] = getattr(_module, _name)


@pytest_asyncio.fixture
async def store(cluster: dict[str, str]) -> AsyncIterator[RedisRunStore]:
    """A run store on the Redis Cluster (the run store and Oslo suites)."""
    async with cluster_store(
        cluster["ORCH_SERV_CLUSTER_REDIS_URL"], "clct", retention_seconds=60
    ) as opened:
        yield opened


@pytest_asyncio.fixture
async def statuses(cluster: dict[str, str], settings: Settings) -> AsyncIterator[StatusStore]:
    """The status store on the Redis Cluster (the Statusek suite)."""
    async with cluster_store(
        cluster["ORCH_SERV_CLUSTER_REDIS_URL"], "clst", clock=_statuses.Clock()
    ) as opened:
        yield StatusStore(opened)


@pytest.fixture
def clock() -> Clock:
    """A test-driven clock (the chart suite's)."""
    return Clock()


@pytest_asyncio.fixture
async def run_store(cluster: dict[str, str], clock: Clock) -> AsyncIterator[RedisRunStore]:
    """A run store on the Redis Cluster (the chart store suite)."""
    async with cluster_store(cluster["ORCH_SERV_CLUSTER_REDIS_URL"], "clch", clock=clock) as run:
        yield run


@pytest.fixture
def charts(run_store: RedisRunStore) -> ChartStore:
    """The charts of ``run_store``."""
    return ChartStore.of(run_store)
