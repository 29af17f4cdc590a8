"""Keep the AMQP connection alive whatever properties a message carries.

Why: aiormq decodes every incoming frame with pamqp inside its connection's reader task, and
pamqp 3.3 raises on properties that RabbitMQ passes through untouched: a header *name*, a
``content_type`` or any other short-string property that is not UTF-8
(``UnicodeDecodeError``), a table nested deeper than Python's recursion limit
(``RecursionError``), a timestamp out of ``datetime``'s range, an unknown field type... The
exception escapes the reader, aiormq closes the whole connection (every channel and consumer
of the process), the robust connection reconnects, the broker redelivers the same message, and
the next consumer dies the same way: one message published by anyone stops a service for good.
The same holds for a routing key or exchange name that is not UTF-8 in a ``Basic.Deliver``
(reachable through a fanout exchange such as the control exchange, which ignores routing keys).

What :func:`install` changes (once per process, idempotently, when the RabbitMQ transport is
imported):

* ``pamqp.header.ContentHeader.unmarshal``: when the *properties* of a content header cannot
  be decoded (or aio-pika could not use them: an ``expiration`` that is not a number), the frame
  still decodes (class, weight and body size are the fixed first 12 bytes, so the body frames
  that follow are read correctly) and its properties are replaced by two headers:
  ``x-orch-serv-undecodable`` (why) and ``x-orch-serv-raw-properties`` (the raw property bytes,
  base64, so nothing is lost). The transport's consumer dead-letters such a message with that
  reason before any handler sees it. A header frame whose first 12 bytes are malformed still
  raises as before (that is a broken connection, not a bad message).
* ``Basic.Deliver``, ``Basic.GetOk`` and ``Basic.Return``: a short string that is not UTF-8
  (exchange, routing key, reply text) is decoded with ``surrogateescape`` instead of raising,
  so the delivery can be settled; :mod:`orch_serv.transport.wiresafe` turns such text back into
  printable ``\\xNN`` escapes when it is copied into a dead letter's headers.

Nothing else changes: frames that pamqp decodes today decode exactly as before (the wrappers
act only where pamqp raised). Written against pamqp 3.3 (aiormq 6.9, aio-pika 9.6), whose
``ContentHeader.unmarshal`` and ``base.Frame.unmarshal`` it mirrors; if pamqp ever stops
raising on these inputs, the wrappers simply never take their fallback path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pamqp import base, commands, decode
from pamqp.header import ContentHeader

from orch_serv.transport.guard import HEADER_UNDECODABLE
from orch_serv.transport.wiresafe import raw_b64

__all__ = ["HEADER_RAW_PROPERTIES", "HEADER_UNDECODABLE", "install", "installed"]

#: The raw (base64) property bytes of a message whose properties could not be decoded (it
#: also carries ``HEADER_UNDECODABLE``, why).
HEADER_RAW_PROPERTIES = "x-orch-serv-raw-properties"

_MARK = "__orch_serv_tolerant__"
#: The method frames whose strings come from other publishers.
_METHODS: tuple[type[base.Frame], ...] = (
    commands.Basic.Deliver,
    commands.Basic.GetOk,
    commands.Basic.Return,
)


def install() -> None:
    """Install the tolerant decoders (idempotent)."""
    current = ContentHeader.unmarshal
    if not getattr(current, _MARK, False):
        ContentHeader.unmarshal = _tolerant_header(current)  # type: ignore[method-assign]
    for method in _METHODS:
        original = method.unmarshal
        if not getattr(original, _MARK, False):
            method.unmarshal = _tolerant_method(original)  # type: ignore[method-assign]


def installed() -> bool:
    """True once :func:`install` ran in this process."""
    return bool(getattr(ContentHeader.unmarshal, _MARK, False))


def _tolerant_header(original: Callable[[ContentHeader, bytes], None]) -> Any:
    def unmarshal(self: ContentHeader, data: bytes) -> None:
        try:
            original(self, data)
            if self.properties.expiration is not None:
                float(self.properties.expiration)  # what aio-pika does with it on delivery
            return
        except Exception as exc:  # anything the properties make pamqp raise
            if len(data) < 12:
                raise
            reason = f"undecodable message properties: {type(exc).__name__}: {exc}"
        self.class_id, self.weight, self.body_size = struct.unpack(">HHQ", data[0:12])
        self.properties = commands.Basic.Properties(
            headers={HEADER_UNDECODABLE: reason[:512], HEADER_RAW_PROPERTIES: raw_b64(data[12:])}
        )

    setattr(unmarshal, _MARK, True)
    return unmarshal


def _tolerant_method(original: Callable[[base.Frame, bytes], None]) -> Any:
    def unmarshal(self: base.Frame, data: bytes) -> None:
        try:
            original(self, data)
        except UnicodeDecodeError:
            _unmarshal_escaped(self, data)

    setattr(unmarshal, _MARK, True)
    return unmarshal


def _unmarshal_escaped(frame: base.Frame, data: bytes) -> None:
    """pamqp's ``base.Frame.unmarshal``, with short strings decoded by ``surrogateescape``."""
    offset, processing_bitset = 0, False
    for argument in frame.__slots__:
        data_type = frame.amqp_type(argument)
        if offset == 7 and processing_bitset:
            data = data[1:]
            offset = 0
        if processing_bitset and data_type != "bit":
            offset = 0
            processing_bitset = False
            data = data[1:]
        value: Any
        if data_type == "shortstr":
            length = data[0]
            consumed, value = length + 1, data[1 : length + 1].decode("utf-8", "surrogateescape")
        else:
            consumed, value = decode.by_type(data, data_type, offset)
        if data_type == "bit":
            offset += 1
            processing_bitset = True
            consumed = 0
        setattr(frame, argument, value)
        if consumed:
            data = data[consumed:]
