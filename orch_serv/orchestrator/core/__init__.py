"""The engine's decision core: given where a run is, what came in (a start, a reply, a
heartbeat, a status event, a timer, a lost start), the flow definition and the time, it
returns one typed :mod:`decision <orch_serv.orchestrator.core.decision>`. No I/O, no asyncio:
the engine shell (``orchestrator/engine.py``) decodes, asks, commits, publishes and acks."""

from orch_serv.orchestrator.core.advance import Advance, Hooked, ReplyHooks
from orch_serv.orchestrator.core.clocks import Clocks
from orch_serv.orchestrator.core.decision import (
    CancelNotice,
    Commit,
    Decision,
    Ignore,
    NeedRun,
    RecordBeat,
    RecordStatus,
    Reject,
    Send,
)
from orch_serv.orchestrator.core.dispatch import Dispatch, Planner
from orch_serv.orchestrator.core.recovery import recover, recovery_scope

__all__ = [
    "Advance",
    "CancelNotice",
    "Clocks",
    "Commit",
    "Decision",
    "Dispatch",
    "Hooked",
    "Ignore",
    "NeedRun",
    "Planner",
    "RecordBeat",
    "RecordStatus",
    "Reject",
    "ReplyHooks",
    "Send",
    "recover",
    "recovery_scope",
]
