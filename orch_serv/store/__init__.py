"""Run stores: the protocol the engine uses, and Redis."""

from typing import TYPE_CHECKING, Any

from orch_serv.store.base import (
    CreateResult,
    Event,
    NewRun,
    Outcome,
    Position,
    RunRecord,
    RunStore,
    Transition,
    TransitionResult,
)

if TYPE_CHECKING:
    from orch_serv.store.redis import RedisRunStore


def __getattr__(name: str) -> Any:
    """``RedisRunStore`` is imported when first asked for (it loads redis-py)."""
    if name == "RedisRunStore":
        from orch_serv.store.redis import RedisRunStore

        return RedisRunStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CreateResult",
    "Event",
    "NewRun",
    "Outcome",
    "Position",
    "RedisRunStore",
    "RunRecord",
    "RunStore",
    "Transition",
    "TransitionResult",
]
