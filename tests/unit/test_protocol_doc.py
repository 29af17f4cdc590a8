"""docs/protocol.md cannot rot: its schema is the code's, and its examples decode.

The last ```json block of the document must equal :func:`envelope_json_schema` (and be its
exact printed text); every ```json block introduced by a line ``Example (<kind>...):`` must
decode with the codec into a message of that kind, use only envelope fields, and follow the
message id conventions of section 4.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orch_serv.constants import (
    HEADER_KIND,
    HEADER_ORIGIN_QUEUE,
    HEADER_ORIGIN_ROUTING_KEY,
    HEADER_PROTOCOL,
    HEADER_REASON,
    PROTOCOL_VERSION,
    MessageKind,
)
from orch_serv.messages.codec import decode, encode
from orch_serv.messages.envelope import command_message_id
from orch_serv.messages.schema import SCHEMA_TITLE, envelope_json_schema, main, render_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
FENCE = re.compile(r"^```json[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
EXAMPLE_LABEL = re.compile(r"^Example \((?P<kind>[a-z]+)\b[^)]*\):$")


@dataclass(frozen=True)
class Block:
    """A ```json block of the document and the last non-blank line before it."""

    label: str
    text: str


def _blocks() -> list[Block]:
    doc = DOC.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(doc):
        before = [line for line in doc[: match.start()].splitlines() if line.strip()]
        blocks.append(Block(label=before[-1].strip() if before else "", text=match.group(1)))
    return blocks


def _examples() -> list[Block]:
    return [b for b in _blocks() if EXAMPLE_LABEL.match(b.label)]


def test_last_json_block_is_the_envelope_schema() -> None:
    blocks = _blocks()
    assert blocks, f"{DOC} has no ```json block"
    assert json.loads(blocks[-1].text) == envelope_json_schema()


def test_last_json_block_is_the_exact_output_of_the_schema_module() -> None:
    assert _blocks()[-1].text == render_schema() + "\n"


def test_schema_is_titled_and_describes_the_wire_envelope() -> None:
    schema = envelope_json_schema()
    assert schema["title"] == SCHEMA_TITLE == "OrchServEnvelope"
    assert set(schema["required"]) == {"kind", "message_id", "run_id"}
    assert schema["properties"]["kind"]["$ref"] == "#/$defs/MessageKind"
    assert schema["$defs"]["MessageKind"]["enum"] == [k.value for k in MessageKind]
    assert envelope_json_schema() is not envelope_json_schema()  # a fresh dict each call


def test_main_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    main()
    assert json.loads(capsys.readouterr().out) == envelope_json_schema()


def test_every_kind_has_an_example() -> None:
    labels = [EXAMPLE_LABEL.match(b.label) for b in _examples()]
    assert {m.group("kind") for m in labels if m} == {k.value for k in MessageKind}


@pytest.mark.parametrize("example", _examples(), ids=lambda b: b.label)
def test_example_decodes(example: Block) -> None:
    label = EXAMPLE_LABEL.match(example.label)
    assert label is not None
    message = decode(example.text.encode(), {HEADER_PROTOCOL: PROTOCOL_VERSION})
    assert message.kind.value == label.group("kind")
    # Only real envelope fields, in the form the SDK itself sends (nulls left out).
    original: dict[str, Any] = json.loads(example.text)
    assert json.loads(encode(message)) == original


@pytest.mark.parametrize("example", _examples(), ids=lambda b: b.label)
def test_example_follows_the_message_id_conventions(example: Block) -> None:
    message = decode(example.text.encode())
    command_id = command_message_id(message.run_id, message.step, message.attempt, message.lane)
    if message.kind is MessageKind.START:
        assert message.message_id == f"{message.run_id}:start"
    elif message.kind is MessageKind.COMMAND:
        assert message.message_id == command_id
        assert message.reply_to is not None
    elif message.kind is MessageKind.REPLY:
        assert message.message_id == f"{command_id}:reply"
        assert (message.error is None) or (message.body is None)
    elif message.kind is MessageKind.RESUME:
        lane = message.lane.value
        assert message.message_id == (
            f"{message.run_id}:resume:{lane}:{message.step}:{message.attempt}"
        )
    elif message.kind is MessageKind.HEARTBEAT:
        assert re.fullmatch(re.escape(f"{command_id}:beat:") + r"[1-9][0-9]*", message.message_id)
    elif message.kind is MessageKind.CANCEL:
        assert isinstance(message.body, dict)
        assert message.message_id == f"{message.body['message_id'] or message.run_id}:cancel"
    else:
        assert re.fullmatch(re.escape(f"{command_id}:status:") + r"[1-9][0-9]*", message.message_id)
        assert message.status is not None


def test_doc_names_the_headers_the_code_uses() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for header in (
        HEADER_PROTOCOL,
        HEADER_KIND,
        HEADER_REASON,
        HEADER_ORIGIN_QUEUE,
        HEADER_ORIGIN_ROUTING_KEY,
    ):
        assert f"`{header}`" in doc, header
