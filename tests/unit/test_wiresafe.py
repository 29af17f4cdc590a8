"""Wire-safe headers, tolerant frame decoding and raw batch splitting, without a broker."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import struct
from typing import Any

import aio_pika
import pytest
from pamqp import commands, frame
from pamqp.header import ContentHeader

from orch_serv.transport import tolerant
from orch_serv.transport.batching import split_batch, split_raw
from orch_serv.transport.encodable import UnencodableMessage, check_encodable
from orch_serv.transport.wiresafe import HEADER_CONVERTED, wire_safe_headers
from tests import amqp_raw as raw

tolerant.install()


def _encodes(headers: dict[str, Any]) -> None:
    """Whether aio-pika/pamqp can send these headers (deliberately any value, even a bad one)."""
    check_encodable(aio_pika.Message(b"x", headers=headers, message_id="m"), "k", 131072)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"caf\xe9", "caf\\xe9"),
        (1e300, "1e+300"),
        (0.1, "0.1"),  # would lose precision as float32
        (-5, "-5"),  # pamqp 3.3 cannot pack -128..-1
        (1 << 70, str(1 << 70)),
        ("\udcff", "\\xff"),
        (decimal.Decimal("1e100"), "1E+100"),
        (datetime.datetime(1900, 1, 1), "1900-01-01T00:00:00"),
        ((1, 2), [1, 2]),
    ],
)
def test_values_that_cannot_round_trip_become_strings(value: object, expected: object) -> None:
    lossy = value == 0.1  # encodes, but as float32 it comes back as 0.10000000149...
    with contextlib.nullcontext() if lossy else pytest.raises(UnencodableMessage):
        _encodes({"v": value})
    safe = wire_safe_headers({"v": value, "ok": 1})
    assert safe["v"] == expected and safe["ok"] == 1
    assert safe[HEADER_CONVERTED] == "v"
    _encodes(safe)


def test_keys_nesting_and_good_values() -> None:
    deep: dict[str, object] = {}
    for _ in range(50):
        deep = {"a": deep}
    headers = {5: "int key", "k" * 200: 1, "n": deep, "fine": [1, "x", 2.5, True, None]}
    safe = wire_safe_headers(headers)
    _encodes(safe)
    assert safe["5"] == "int key" and safe["k" * 128] == 1
    assert safe["fine"] == [1, "x", 2.5, True, None]
    assert set(safe[HEADER_CONVERTED].split(",")) == {"5", "k" * 128, "n"}
    assert wire_safe_headers({"plain": "x", "i": 7}) == {"plain": "x", "i": 7}


def _header_frame(props: bytes, body_size: int = 7) -> bytes:
    payload = struct.pack(">HHQ", 60, 0, body_size) + props
    return struct.pack(">BHI", 2, 1, len(payload)) + payload + b"\xce"


@pytest.mark.parametrize(
    "props",
    [
        raw.properties(content_type=b"\xff"),
        raw.properties(headers=raw.table([raw.field(b"\xfe", b"S", raw.longstr(b"v"))])),
        raw.properties(headers=raw.table([raw.field(b"n", b"F", raw.nested(900))])),
        raw.properties(expiration=b"soon"),
    ],
)
def test_undecodable_properties_become_a_marker(props: bytes) -> None:
    _, channel, header = frame.unmarshal(_header_frame(props))
    assert isinstance(header, ContentHeader)
    assert channel == 1 and header.body_size == 7
    headers = header.properties.headers
    assert headers is not None
    marker = headers[tolerant.HEADER_UNDECODABLE]
    assert isinstance(marker, str) and marker.startswith("undecodable message properties")
    assert headers[tolerant.HEADER_RAW_PROPERTIES]


def test_good_properties_decode_as_before() -> None:
    props = raw.properties(headers=raw.table([raw.field(b"k", b"S", raw.longstr(b"v"))]))
    _, _, header = frame.unmarshal(_header_frame(props))
    assert isinstance(header, ContentHeader)
    assert header.properties.headers == {"k": "v"}
    assert header.properties.content_type == "application/json"


def test_a_deliver_with_a_routing_key_that_is_not_utf8_still_decodes() -> None:
    payload = struct.pack(">HH", 60, 60) + raw.shortstr(b"tag") + struct.pack(">Q", 9) + b"\x00"
    payload += raw.shortstr(b"ex") + raw.shortstr(b"key\xff")
    data = struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce"
    _, _, deliver = frame.unmarshal(data)
    assert isinstance(deliver, commands.Basic.Deliver)
    assert deliver.delivery_tag == 9 and deliver.routing_key == "key\udcff"
    assert wire_safe_headers({"rk": deliver.routing_key})["rk"] == "key\\xff"


def test_batches_split_byte_for_byte_when_orjson_cannot() -> None:
    deep = b"[" * 2000 + b"]" * 2000
    assert split_batch(b'[{"a":1},' + deep + b',{"b":"x]\\""}]') == [
        b'{"a":1}',
        deep,
        b'{"b":"x]\\""}',
    ]
    assert split_batch(b'[{"a": 1}, [2]]') == [b'{"a":1}', b"[2]"]  # the fast path
    for broken in (b"[1,]", b"[1", b"{}", b"[1]x", b"[,1]"):
        assert split_raw(broken) is None
