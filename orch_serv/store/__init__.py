"""Run stores: the protocol the engine uses, and Redis."""

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
from orch_serv.store.redis import RedisRunStore

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
