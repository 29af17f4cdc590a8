"""The wire form of a batch message, the same on both transports.

A batch is ONE AMQP message whose body is the JSON array of its envelopes (each one byte for
byte as it would have been sent alone), with the header ``x-orch-serv-batch: N``, the AMQP
``type`` ``batch`` and the message id ``batch:{first envelope's id}:{N}``; its other headers
are the first envelope's. :func:`join_batch` builds that body, :func:`split_batch` takes it
apart again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson

from orch_serv.constants import HEADER_BATCH
from orch_serv.transport.wiresafe import fit_short

#: (routing key, body, message id, headers, kind) -> returns once the broker confirmed it
RawPublish = Callable[[str, bytes, str, Mapping[str, Any] | None, str | None], Awaitable[None]]

#: The AMQP ``type`` of a batch message.
BATCH_KIND = "batch"


def join_batch(bodies: Sequence[bytes]) -> bytes:
    """The body of a batch message: the JSON array of ``bodies`` (each kept as it is)."""
    return b"[" + b",".join(bodies) + b"]"


def batch_headers(first: Mapping[str, Any] | None, size: int) -> dict[str, Any]:
    """The headers of a batch of ``size`` envelopes: the first envelope's, plus the marker."""
    headers = dict(first or {})
    headers[HEADER_BATCH] = size
    return headers


def element_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers an element of a batch is delivered with: the batch's, minus the marker."""
    return {k: v for k, v in headers.items() if k != HEADER_BATCH}


def batch_message_id(first: str, size: int) -> str:
    """``batch:{first}:{size}``; should the first envelope's id make that longer than an AMQP
    short string holds (255 bytes), a random ``batch:{hex}:{size}`` instead, so that a long
    id does not fail every publish of the batch."""
    return fit_short(f"batch:{first}:{size}") or f"batch:{uuid.uuid4().hex}:{size}"


def split_batch(body: bytes) -> list[bytes] | None:
    """The envelopes of a batch body; None if it is not a JSON array.

    The fast path parses the array with orjson and re-encodes each element. When that fails
    (one element nested past orjson's recursion limits, not UTF-8, an integer beyond 64 bits,
    broken JSON inside one element...), the array is split on its top-level commas instead,
    each element kept byte for byte: every element is then decoded, and dead-lettered with its
    own reason if need be, on its own, while the good elements of the batch are processed.
    """
    try:
        elements = orjson.loads(body)
        if not isinstance(elements, list):
            return None
        return [orjson.dumps(e) for e in elements]
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError, RecursionError):
        return split_raw(body)


#: A JSON string (escapes included), or one of the characters that shape an array.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


def split_raw(body: bytes) -> list[bytes] | None:
    """The top-level elements of a JSON array as the exact bytes they were sent as (nesting
    is tracked, strings skipped, nothing else is parsed); None unless ``body`` is one
    balanced array of non-empty elements."""
    depth, start = 0, -1
    parts: list[bytes] = []
    for match in _TOKEN.finditer(body):
        char = body[match.start()]
        if char == 0x22:  # a string: whatever it holds does not count
            continue
        if char in _OPEN:
            if depth == 0:
                if start >= 0 or char != 0x5B or body[: match.start()].strip():
                    return None
                start = match.end()
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                last = body[start : match.start()].strip()
                if char != 0x5D or body[match.end() :].strip() or (parts and not last):
                    return None
                return [*parts, last] if last else parts
        elif depth == 1:  # a comma between two elements
            element = body[start : match.start()].strip()
            if not element:
                return None
            parts.append(element)
            start = match.end()
    return None
