"""The published machine-readable protocol documents: docs/envelope.schema.json stays equal to
what ``python -m orch_serv.messages.schema`` prints, and docs/asyncapi.yaml (AsyncAPI 3.0)
parses, references only schemas, channels and messages that exist, names the SDK's queues and
exchanges, and has examples the SDK accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from orch_serv import constants
from orch_serv.constants import PROTOCOL_VERSION, MessageKind
from orch_serv.messages.codec import decode
from orch_serv.messages.schema import envelope_json_schema, render_schema
from orch_serv.transport.base import Topology
from orch_serv.transport.guard import HEADER_UNDECODABLE
from orch_serv.transport.tolerant import HEADER_RAW_PROPERTIES
from orch_serv.transport.wiresafe import HEADER_CONVERTED

DOCS = Path(__file__).resolve().parents[2] / "docs"
ASYNCAPI = DOCS / "asyncapi.yaml"
SCHEMA_FILE = "envelope.schema.json"
#: Every AMQP header the protocol defines.
KNOWN_HEADERS = {
    getattr(constants, name) for name in dir(constants) if name.startswith("HEADER_")
} | {HEADER_UNDECODABLE, HEADER_RAW_PROPERTIES, HEADER_CONVERTED}


# -- helpers -----------------------------------------------------------------------------------
def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)


def _pointer(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (``/a/b``, with ``~1`` and ``~0`` escapes); KeyError if none."""
    value = document
    for raw in pointer.split("/")[1:] if pointer else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(f"no {part!r} in {pointer!r}")
    return value


def _refs(node: Any, where: str = "") -> list[tuple[str, str]]:
    """Every ``$ref`` of a document, with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append((where, value))
            else:
                found += _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _refs(value, f"{where}/{i}")
    return found


def dangling_refs(document: Any, schema: Any) -> list[str]:
    """The references of an AsyncAPI document that do not resolve: internal ones (``#/...``)
    in the document itself, ``./envelope.schema.json#...`` in the envelope's schema; any other
    form (a URL, another file) is reported too."""
    problems = []
    for where, ref in _refs(document):
        target, _, pointer = ref.partition("#")
        if target == "":
            base = document
        elif target in (SCHEMA_FILE, f"./{SCHEMA_FILE}"):
            base = schema
        else:
            problems.append(f"{where}: {ref!r} points outside this document and {SCHEMA_FILE}")
            continue
        try:
            _pointer(base, pointer)
        except KeyError as exc:
            problems.append(f"{where}: {ref!r} does not resolve ({exc.args[0]})")
    return problems


def _resolve(document: Any, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#"):
        node = _pointer(document, node["$ref"][1:])
    return node


def _kind_const(document: Any, schema: Any) -> str | None:
    """The ``kind`` a payload schema pins (``allOf`` member with ``properties.kind.const``)."""
    schema = _resolve(document, schema)
    for member in schema.get("allOf", []):
        const = member.get("properties", {}).get("kind", {}).get("const")
        if const is not None:
            return str(const)
    return None


@pytest.fixture(scope="module")
def doc() -> Any:
    return _load(ASYNCAPI)


# -- the JSON Schema file ----------------------------------------------------------------------
def test_the_schema_file_is_what_the_code_generates() -> None:
    published = (DOCS / SCHEMA_FILE).read_text(encoding="utf-8")
    assert published == render_schema() + "\n", (
        f"docs/{SCHEMA_FILE} is stale: regenerate it with "
        f"`python -m orch_serv.messages.schema > docs/{SCHEMA_FILE}`"
    )
    assert json.loads(published) == envelope_json_schema()


# -- the AsyncAPI document ---------------------------------------------------------------------
def test_asyncapi_parses_as_an_asyncapi_3_document(doc: Any) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["version"] == str(PROTOCOL_VERSION)
    assert {"channels", "operations", "components"} <= set(doc)


def test_every_reference_resolves(doc: Any) -> None:
    assert dangling_refs(doc, _load(DOCS / SCHEMA_FILE)) == []


def test_a_dangling_or_foreign_reference_is_reported() -> None:
    broken = {
        "a": {"$ref": "#/components/schemas/Nope"},
        "b": [{"$ref": "./envelope.schema.json#/$defs/Nope"}],
        "c": {"$ref": "https://example.org/schema.json"},
        "d": {"$ref": "./envelope.schema.json#/$defs/Lane"},
    }
    problems = dangling_refs(broken, _load(DOCS / SCHEMA_FILE))
    assert problems == [
        "/a: '#/components/schemas/Nope' does not resolve (no 'components' in "
        "'/components/schemas/Nope')",
        "/b/0: './envelope.schema.json#/$defs/Nope' does not resolve (no 'Nope' in '/$defs/Nope')",
        "/c: 'https://example.org/schema.json' points outside this document and "
        "envelope.schema.json",
    ]


def test_the_channels_are_the_sdks_queues_and_exchanges(doc: Any) -> None:
    names = Topology("{namespace}")
    channels = doc["channels"]
    assert {name: channel["address"] for name, channel in channels.items()} == {
        "orchestrator": names.orchestrator_queue,
        "service": names.service_queue("{service}"),
        "control": names.control_exchange,
        "deadLetters": names.dead_letter_queue,
    }
    for channel in channels.values():
        params = {p for p in ("namespace", "service") if f"{{{p}}}" in channel["address"]}
        assert set(channel.get("parameters", {})) == params


def test_operations_name_existing_channels_and_their_messages(doc: Any) -> None:
    for name, operation in doc["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        answers = [operation] + ([operation["reply"]] if "reply" in operation else [])
        for part in answers:
            channel_ref = part["channel"]["$ref"]
            assert channel_ref.startswith("#/channels/"), name
            channel = channel_ref.removeprefix("#/channels/")
            assert channel in doc["channels"], name
            for message in part.get("messages", []):
                # AsyncAPI 3: an operation's messages are messages of its channel
                prefix = f"#/channels/{channel}/messages/"
                assert message["$ref"].startswith(prefix), (name, message)
                assert message["$ref"].removeprefix(prefix) in doc["channels"][channel]["messages"]


def test_every_message_kind_has_a_message_pinning_it(doc: Any) -> None:
    messages = doc["components"]["messages"]
    pinned = {}
    for key, message in messages.items():
        kind = _kind_const(doc, message["payload"])
        if kind is not None:
            assert message["name"] == kind, key
            pinned[kind] = key
    assert set(pinned) == {kind.value for kind in MessageKind}
    names = {message["name"] for message in messages.values()}
    assert names == {kind.value for kind in MessageKind} | {"batch", "deadLetter"}


def test_headers_are_the_protocols(doc: Any) -> None:
    schemas = doc["components"]["schemas"]
    declared: set[str] = set()
    for name in ("ProtocolHeaders", "BatchHeaders", "DeadLetterHeaders"):
        schema = schemas[name]
        for member in [schema, *schema.get("allOf", [])]:
            declared |= set(member.get("properties", {}))
    assert declared == KNOWN_HEADERS


def test_the_examples_are_envelopes_the_sdk_accepts(doc: Any) -> None:
    seen = set()
    for key, message in doc["components"]["messages"].items():
        for example in message.get("examples", []):
            envelope = decode(json.dumps(example["payload"]).encode())
            assert envelope.kind.value == message["name"], key
            seen.add(envelope.kind)
    assert seen == set(MessageKind)
