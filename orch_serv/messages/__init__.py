"""The wire protocol: one envelope for every message and its codec."""

from orch_serv.legacy02.message import BaseOrchServMsg
from orch_serv.messages.codec import decode, encode, headers_for
from orch_serv.messages.envelope import (
    Envelope,
    ErrorInfo,
    StatusInfo,
    command_message_id,
)

__all__ = [
    "BaseOrchServMsg",
    "Envelope",
    "ErrorInfo",
    "StatusInfo",
    "command_message_id",
    "decode",
    "encode",
    "headers_for",
]
