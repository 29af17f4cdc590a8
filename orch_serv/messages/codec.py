"""Bytes <-> :class:`Envelope`. JSON on the wire; the protocol version in AMQP headers.

Encoding and decoding run in pydantic-core (Rust), the fastest path pydantic offers; the
user's body is decoded as plain JSON here and validated once, at the service edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from orch_serv.constants import HEADER_KIND, HEADER_PROTOCOL, PROTOCOL_VERSION
from orch_serv.exceptions import DecodeError, MessageTooLarge
from orch_serv.messages.envelope import Envelope

WireEnvelope = Envelope[Any]


def encode(envelope: Envelope[Any]) -> bytes:
    """Serialise an envelope (whatever its body type) to JSON bytes."""
    return envelope.model_dump_json(exclude_none=True).encode()


def headers_for(envelope: Envelope[Any]) -> dict[str, Any]:
    """AMQP headers that go with an encoded envelope."""
    return {HEADER_PROTOCOL: PROTOCOL_VERSION, HEADER_KIND: envelope.kind.value}


def decode(
    data: bytes, headers: Mapping[str, Any] | None = None, *, max_bytes: int = 0
) -> Envelope[Any]:
    """Parse bytes into an envelope with an untyped body.

    Raises :class:`DecodeError` (with a reason fit for a dead-letter header) for bytes that are
    not JSON, not an envelope, or of an unsupported protocol version (whatever the decoder
    raised: nesting beyond its recursion limit, numbers out of range...), and
    :class:`MessageTooLarge` when ``max_bytes`` is set and exceeded.
    """
    if max_bytes and len(data) > max_bytes:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    if headers:
        version = headers.get(HEADER_PROTOCOL)
        if version is not None and version != PROTOCOL_VERSION:
            raise DecodeError(
                f"unsupported protocol version {version!r}, expected {PROTOCOL_VERSION}"
            )
    try:
        return WireEnvelope.model_validate_json(data)
    except ValidationError as exc:
        raise DecodeError(_describe(exc)) from exc
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        # Whatever else the decoder or a validator lets escape (deep nesting, huge numbers):
        # still a bad message, never a crash of the consumer.
        raise DecodeError(f"undecodable message: {type(exc).__name__}: {exc}"[:1024]) from exc


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return f"malformed JSON: {errors[0]['msg']}"
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:5]]
    return "invalid envelope: " + "; ".join(parts)
