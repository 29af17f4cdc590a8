"""Firing chart machines' time states from the orchestrators' timer loop: the engine hands a
due ``chart`` timer here (any replica; the store's compare-and-set fires it at most once)."""

from __future__ import annotations

import weakref

from orch_serv.logs import get_logger
from orch_serv.store.base import RunStore
from orch_serv.store.charts import ChartStore
from orch_serv.store.redis_base import RedisBase
from orch_serv.store.timers import TimerId

log = get_logger("charts")

_STORES: weakref.WeakKeyDictionary[RedisBase, ChartStore] = weakref.WeakKeyDictionary()


def charts_of(store: RunStore) -> ChartStore | None:
    """The chart store on ``store``'s Redis (None for a store that is not a Redis one)."""
    if not isinstance(store, RedisBase):
        return None
    charts = _STORES.get(store)
    if charts is None:
        charts = _STORES[store] = ChartStore.of(store)
    return charts


async def fire_chart_timer(store: RunStore, timer: TimerId) -> float | None:
    """Fire the time state of the machine ``timer`` is about, if its time has passed and the
    machine is still there; returns when the machine's next time state is due (None: it is
    not in one)."""
    charts = charts_of(store)
    if charts is None:
        log.warning("chart_timer_unsupported", member=str(timer))
        return None
    answer = await charts.fire(timer)
    return answer.due


__all__ = ["charts_of", "fire_chart_timer"]
