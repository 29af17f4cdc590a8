"""orch_serv 0.2's message module: :class:`BaseOrchServMsg` at its 0.2 path."""

from orch_serv.legacy02.message import BaseOrchServMsg

__all__ = ["BaseOrchServMsg"]
