"""orch_serv 0.2's ``orch_serv.orchestrator.block``: the in-process blocks."""

from orch_serv.legacy02.blocks import AsyncBaseBlock, AsyncBlock, SyncBaseBlock, SyncBlock

__all__ = ["AsyncBaseBlock", "AsyncBlock", "SyncBaseBlock", "SyncBlock"]
