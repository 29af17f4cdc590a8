"""Status models (Statusek's objects): statuses of type MANDATORY, OPTIONAL or STOP with
predecessor rules and an instance timeout; declared in Python or YAML, published to Redis.

The rules live in :mod:`~orch_serv.statusmodel.rules`; instances and the atomic setting of a
status in :mod:`orch_serv.store.statuses`; the HTTP surface in :mod:`orch_serv.api.statusek`.
"""

from __future__ import annotations

from orch_serv.statusmodel.codes import Code, FinishReason
from orch_serv.statusmodel.model import (
    BUILTIN_MODELS,
    TWO_POINT_LINE_TASK,
    Status,
    StatusModel,
    StatusType,
)
from orch_serv.statusmodel.rules import StatusRule, finish_reason, ready
from orch_serv.statusmodel.yamlfile import (
    StatusModelError,
    load_models,
    loads_models,
    parse_models,
)

__all__ = [
    "BUILTIN_MODELS",
    "TWO_POINT_LINE_TASK",
    "Code",
    "FinishReason",
    "Status",
    "StatusModel",
    "StatusModelError",
    "StatusRule",
    "StatusType",
    "finish_reason",
    "load_models",
    "loads_models",
    "parse_models",
    "ready",
]
