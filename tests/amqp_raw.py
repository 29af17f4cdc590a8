"""A tiny raw AMQP 0-9-1 publisher for poison-message tests.

aio-pika (through pamqp) refuses to *send* what these tests need to *receive*: header names
or values that are not UTF-8, a ``content_type`` that is not UTF-8, a double beyond float32,
an integer beyond int64, tables nested deeper than Python's recursion limit... So this module
speaks AMQP over a plain asyncio socket: pamqp marshals the standard frames (protocol header,
Connection.StartOk/TuneOk/Open, Channel.Open, Confirm.Select, Basic.Publish, body), while the
*content-header* frame is assembled here from raw bytes the test chooses (:func:`properties`,
:func:`table`, :func:`field`).

Every publish waits for the broker's confirm (``Basic.Ack``), so a test knows the message is
in its queue before it looks for it; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from types import TracebackType
from typing import Self, TypeVar

from pamqp import base, commands, frame, header
from pamqp.body import ContentBody

FRAME_END = b"\xce"

_Method = TypeVar("_Method")

#: Bit of each Basic property in the property flags, in wire order.
PROPERTY_FLAGS = {
    "content_type": 0x8000,
    "content_encoding": 0x4000,
    "headers": 0x2000,
    "delivery_mode": 0x1000,
    "priority": 0x0800,
    "correlation_id": 0x0400,
    "reply_to": 0x0200,
    "expiration": 0x0100,
    "message_id": 0x0080,
    "timestamp": 0x0040,
    "type": 0x0020,
    "app_id": 0x0008,
}


def shortstr(raw: bytes) -> bytes:
    """An AMQP short string holding exactly ``raw`` (no encoding, no check)."""
    return struct.pack(">B", len(raw)) + raw


def longstr(raw: bytes) -> bytes:
    """An AMQP long string holding exactly ``raw``."""
    return struct.pack(">I", len(raw)) + raw


def field(name: bytes, kind: bytes, value: bytes) -> bytes:
    """One field of a table: raw name, a type octet (``b"S"``, ``b"d"``, ``b"l"``, ``b"F"``...)
    and the already-encoded value."""
    return shortstr(name) + kind + value


def table(fields: Iterable[bytes]) -> bytes:
    """A field table from :func:`field` items."""
    payload = b"".join(fields)
    return struct.pack(">I", len(payload)) + payload


def double(value: float) -> bytes:
    """A ``d`` field value (IEEE double)."""
    return struct.pack(">d", value)


def int64(value: int) -> bytes:
    """An ``l`` field value; ``value`` is taken modulo 2**64 (so any int can be sent)."""
    return struct.pack(">Q", value % (1 << 64))


def nested(depth: int) -> bytes:
    """A table value nested ``depth`` tables deep: ``{"a": {"a": ... {}}}``."""
    value = table([])
    for _ in range(depth):
        value = table([field(b"a", b"F", value)])
    return value


def properties(
    *,
    content_type: bytes | None = b"application/json",
    headers: bytes | None = None,
    delivery_mode: int | None = 2,
    message_id: bytes | None = None,
    type_: bytes | None = None,
    expiration: bytes | None = None,
) -> bytes:
    """Raw Basic properties (flags + values). String arguments are sent byte for byte and
    ``headers`` is an already-encoded table (see :func:`table`)."""
    values = {
        "content_type": None if content_type is None else shortstr(content_type),
        "headers": headers,
        "delivery_mode": None if delivery_mode is None else struct.pack(">B", delivery_mode),
        "expiration": None if expiration is None else shortstr(expiration),
        "message_id": None if message_id is None else shortstr(message_id),
        "type": None if type_ is None else shortstr(type_),
    }
    flags, data = 0, b""
    for name, bit in PROPERTY_FLAGS.items():
        value = values.get(name)
        if value is not None:
            flags |= bit
            data += value
    return struct.pack(">H", flags) + data


class RawPublisher:
    """One AMQP connection with one confirmed channel, publishing hand-made properties."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5672) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buffer = b""
        self._frame_max = 131072
        self._channel = 1
        self._published = 0

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> None:
        """Handshake, open channel 1 and put it in confirm mode."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(header.ProtocolHeader().marshal())
        await self._expect(commands.Connection.Start)
        response = f"\0{user}\0{password}"
        self._send(0, commands.Connection.StartOk(mechanism="PLAIN", response=response))
        tune = await self._expect(commands.Connection.Tune)
        self._frame_max = tune.frame_max or self._frame_max
        self._send(
            0,
            commands.Connection.TuneOk(
                channel_max=tune.channel_max, frame_max=self._frame_max, heartbeat=0
            ),
        )
        self._send(0, commands.Connection.Open(virtual_host=vhost))
        await self._expect(commands.Connection.OpenOk)
        self._send(self._channel, commands.Channel.Open())
        await self._expect(commands.Channel.OpenOk)
        self._send(self._channel, commands.Confirm.Select())
        await self._expect(commands.Confirm.SelectOk)

    async def close(self) -> None:
        """Close the connection (politely when it is still open)."""
        if self._writer is None:
            return
        try:
            self._send(
                0,
                commands.Connection.Close(
                    reply_code=200, reply_text="bye", class_id=0, method_id=0
                ),
            )
            await asyncio.wait_for(self._expect(commands.Connection.CloseOk), 5)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
            pass
        self._writer.close()
        self._writer = None

    async def publish_many(
        self, messages: Iterable[tuple[str | bytes, str | bytes, bytes, bytes]]
    ) -> int:
        """Publish many ``(exchange, routing key, body, raw properties)`` at once (not
        mandatory) and wait until the broker confirmed them all; returns how many."""
        assert self._writer is not None
        count = 0
        for exchange, routing_key, body, raw_properties in messages:
            self._writer.write(self._frames(exchange, routing_key, body, raw_properties, False))
            count += 1
        first = self._published + 1
        self._published += count
        pending = set(range(first, self._published + 1))  # delivery tags awaiting a confirm
        while pending:
            got = await self._next()
            if isinstance(got, commands.Basic.Nack):
                raise RuntimeError("the broker nacked a publish")
            if isinstance(got, commands.Connection.Close | commands.Channel.Close):
                raise RuntimeError(f"the broker closed on a publish: {got.reply_text}")
            if isinstance(got, commands.Basic.Ack):
                if got.multiple:
                    pending = {t for t in pending if t > got.delivery_tag}
                else:
                    pending.discard(got.delivery_tag)
        return count

    def _frames(
        self,
        exchange: str | bytes,
        routing_key: str | bytes,
        body: bytes,
        raw_properties: bytes,
        mandatory: bool,
    ) -> bytes:
        method = _publish_frame(self._channel, exchange, routing_key, mandatory)
        payload = struct.pack(">HHQ", 60, 0, len(body)) + raw_properties
        content = struct.pack(">BHI", 2, self._channel, len(payload)) + payload + FRAME_END
        step = self._frame_max - 8
        chunks = [
            frame.marshal(ContentBody(body[start : start + step]), self._channel)
            for start in range(0, len(body), step)
        ]
        return method + content + b"".join(chunks)

    async def publish(
        self,
        exchange: str | bytes,
        routing_key: str | bytes,
        body: bytes,
        raw_properties: bytes,
        *,
        mandatory: bool = False,
    ) -> None:
        """Publish ``body`` with ``raw_properties`` (see :func:`properties`) and wait for the
        broker's confirm. Raises :class:`LookupError` when a mandatory publish is returned."""
        assert self._writer is not None
        self._writer.write(self._frames(exchange, routing_key, body, raw_properties, mandatory))
        self._published += 1
        returned = False
        while True:
            got = await self._next()
            if isinstance(got, commands.Basic.Return):
                returned = True
            elif isinstance(got, commands.Basic.Ack):
                break
            elif isinstance(got, commands.Basic.Nack):
                raise RuntimeError("the broker nacked the publish")
            elif isinstance(got, commands.Connection.Close | commands.Channel.Close):
                raise RuntimeError(f"the broker closed on the publish: {got.reply_text}")
        if returned:
            raise LookupError(f"no queue bound for {routing_key!r}")

    # -- frames --------------------------------------------------------------------------------
    def _send(self, channel: int, value: base.Frame) -> None:
        assert self._writer is not None
        self._writer.write(frame.marshal(value, channel))

    async def _expect(self, kind: type[_Method]) -> _Method:
        got = await self._next()
        if not isinstance(got, kind):
            raise RuntimeError(f"expected {kind.__name__}, got {got!r}")
        return got

    async def _next(self) -> object:
        """The next method frame (content frames of returned messages are skipped)."""
        assert self._reader is not None
        while True:
            head = await self._reader.readexactly(7)
            kind, _channel, size = struct.unpack(">BHI", head)
            data = await self._reader.readexactly(size + 1)
            if kind == 1:
                _, _, value = frame.unmarshal(head + data)
                return value
            if kind == 8:
                continue  # heartbeat (we asked for none; harmless)
            # 2 and 3: header and body of a Basic.Return: not needed by the tests


def _publish_frame(channel: int, exchange: str | bytes, key: str | bytes, mandatory: bool) -> bytes:
    """Basic.Publish with raw exchange/routing-key bytes (so a key can be non-UTF-8 too)."""
    ex = exchange.encode() if isinstance(exchange, str) else exchange
    rk = key.encode() if isinstance(key, str) else key
    payload = struct.pack(">HHH", 60, 40, 0) + shortstr(ex) + shortstr(rk)
    payload += struct.pack(">B", 1 if mandatory else 0)
    return struct.pack(">BHI", 1, channel, len(payload)) + payload + FRAME_END


__all__ = [
    "RawPublisher",
    "double",
    "field",
    "int64",
    "longstr",
    "nested",
    "properties",
    "shortstr",
    "table",
]
