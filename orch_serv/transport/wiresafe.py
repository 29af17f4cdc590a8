"""Headers copied from an incoming message, made safe to publish again.

A message's headers are whatever its publisher put on the wire; some of what the AMQP client
decodes cannot be encoded back (pamqp 3.3's encoder): a non-UTF-8 string value decodes as
``bytes`` (no encoder), a double beyond float32 range overflows (pamqp sends every Python float
as a float32 ``f``; a double within range silently loses precision), integers beyond int64
(and, a pamqp 3.3 bug, any integer from -128 to -1, which it packs as an unsigned octet),
keys longer than pamqp's 128-character cut or that are not strings, tables nested deeper than
Python's recursion allows. Every path that copies an incoming message's headers into a new
publish (dead-lettering, replay, a batch element given back) goes through
:func:`wire_safe_headers`: a value that cannot round-trip becomes a string (keys too), nothing
is dropped, and the names of the headers that were changed are listed in the
``x-orch-serv-converted-headers`` header so an operator can tell.
"""

from __future__ import annotations

import base64
import calendar
import datetime
import decimal
import math
import struct
import time
from collections.abc import Mapping
from typing import Any

#: Lists (comma-separated) the header names whose values or names were converted.
HEADER_CONVERTED = "x-orch-serv-converted-headers"

#: Nesting deeper than this (tables in tables, arrays in arrays) is flattened to a string.
MAX_DEPTH = 32
#: pamqp cuts longer header names (with a warning); we shorten them ourselves, keeping a trace.
MAX_KEY_CHARS = 128
#: The longest AMQP short string (message id, type, routing key), in bytes.
SHORTSTR_MAX = 255
_INT64 = (-(1 << 63), (1 << 63) - 1)
_FLOAT32_MAX = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]


def wire_safe_headers(headers: Mapping[Any, Any]) -> dict[str, Any]:
    """A copy of ``headers`` that pamqp can encode and RabbitMQ accepts, converting what
    cannot round-trip to strings and recording which names were converted."""
    converted: list[str] = []
    safe = _table(headers, converted, 0)
    if converted:
        previous = safe.get(HEADER_CONVERTED)
        names = ",".join(dict.fromkeys(converted))
        safe[HEADER_CONVERTED] = f"{previous},{names}" if isinstance(previous, str) else names
    return safe


def _table(table: Mapping[Any, Any], converted: list[str], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, raw_value in table.items():
        key, key_changed = _key(raw_key, out)
        value, changed = _value(raw_value, converted, depth + 1)
        if key_changed or changed:
            converted.append(key)
        out[key] = value
    return out


def _key(raw: Any, taken: Mapping[str, Any]) -> tuple[str, bool]:
    text, changed = _text(raw) if isinstance(raw, str | bytes | bytearray) else (repr(raw), True)
    if len(text) > MAX_KEY_CHARS:
        text, changed = text[:MAX_KEY_CHARS], True
    if changed and text in taken:  # never let a converted name overwrite another header
        stem = text[: MAX_KEY_CHARS - 8]
        n = 1
        while f"{stem}~{n}" in taken:
            n += 1
        text = f"{stem}~{n}"
    return text, changed


def _text(raw: str | bytes | bytearray) -> tuple[str, bool]:
    """A str that encodes as UTF-8: invalid bytes and lone surrogates become ``\\xNN``."""
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
            return raw, False
        except UnicodeEncodeError:
            data = raw.encode("utf-8", "surrogateescape" if _escaped(raw) else "backslashreplace")
            return data.decode("utf-8", "backslashreplace"), True
    data = bytes(raw)
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", "backslashreplace"), True


def _escaped(text: str) -> bool:
    """True when every lone surrogate is one of surrogateescape's (a byte that was not UTF-8)."""
    return all(0xDC80 <= ord(c) <= 0xDCFF for c in text if 0xD800 <= ord(c) <= 0xDFFF)


def _value(value: Any, converted: list[str], depth: int) -> tuple[Any, bool]:
    """(wire-safe value, whether it changed)."""
    if value is None or isinstance(value, bool):
        return value, False
    if isinstance(value, int):
        # pamqp 3.3 packs -128..-1 as an *unsigned* octet and fails: those become strings too
        if _INT64[0] <= value <= _INT64[1] and not -128 <= value <= -1:
            return value, False
        return _big_int(value), True
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bytes | memoryview):
        return _text(bytes(value))
    if isinstance(value, bytearray):  # encoded as an AMQP byte array ('x'), which RabbitMQ takes
        return value, False
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, datetime.datetime | time.struct_time):
        return _datetime(value)
    if isinstance(value, Mapping | list | tuple) and depth > MAX_DEPTH:
        return f"<nested deeper than {MAX_DEPTH} levels: {_summary(value)}>", True
    if isinstance(value, Mapping):
        inner: list[str] = []
        table = _table(value, inner, depth)
        return table, bool(inner)
    if isinstance(value, list | tuple):
        items = [_value(v, converted, depth + 1) for v in value]
        return [v for v, _ in items], isinstance(value, tuple) or any(c for _, c in items)
    return _short_repr(value), True


def _big_int(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # beyond Python's int->str digit limit
        return hex(value)


def _float(value: float) -> tuple[Any, bool]:
    """pamqp encodes floats as float32: keep those that survive that, stringify the rest."""
    if math.isnan(value) or math.isinf(value):
        return value, False
    if abs(value) <= _FLOAT32_MAX and struct.unpack(">f", struct.pack(">f", value))[0] == value:
        return value, False
    return repr(value), True


def _decimal(value: decimal.Decimal) -> tuple[Any, bool]:
    """AMQP decimals: a scale octet and a signed 32-bit integer, as pamqp computes them."""
    try:
        text = str(value)
        if "." in text:
            scale = len(text.split(".")[-1])
            unscaled = int(value.normalize() * (decimal.Decimal(10) ** scale))
        else:
            scale, unscaled = 0, int(value)
        struct.pack(">Bi", scale, unscaled)
    except (ValueError, OverflowError, ArithmeticError, struct.error):
        return str(value), True
    return value, False


def _datetime(value: datetime.datetime | time.struct_time) -> tuple[Any, bool]:
    """AMQP timestamps: whole seconds since the epoch, unsigned 64-bit (naive = UTC)."""
    try:
        if isinstance(value, time.struct_time):
            seconds = calendar.timegm(value)
        else:
            aware = value if value.utcoffset() is not None else value.replace(tzinfo=datetime.UTC)
            seconds = int(aware.timestamp())
        struct.pack(">Q", seconds)
    except (OverflowError, ValueError, OSError, struct.error):
        return (
            time.strftime("%Y-%m-%dT%H:%M:%S", value)
            if isinstance(value, time.struct_time)
            else value.isoformat()
        ), True
    return value, False


def _summary(value: Any) -> str:
    kind = "table" if isinstance(value, Mapping) else "array"
    return f"{kind} of {len(value)} item(s)"


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a repr that fails must not stop a dead letter
        text = f"<{type(value).__name__}>"
    return text[:1024]


def raw_b64(data: bytes) -> str:
    """Raw bytes kept as a header value (base64), e.g. undecodable properties."""
    return base64.b64encode(data).decode("ascii")


def fit_short(value: str | None) -> str | None:
    """``value`` if it fits an AMQP short string (message id, type), else None."""
    if value is None:
        return None
    try:
        return value if len(value.encode("utf-8")) <= SHORTSTR_MAX else None
    except UnicodeEncodeError:
        return None
