"""The JSON Schema of the wire envelope, as published in ``docs/protocol.md``.

The schema is generated from :class:`~orch_serv.messages.envelope.Envelope` with an untyped
body (``Envelope[Any]``, what :func:`orch_serv.messages.codec.decode` parses), in pydantic's
**validation** mode: it says what the orchestrator and the service runtime accept, which is the
contract a service written in another language must meet when it publishes. Everything
:func:`~orch_serv.messages.codec.encode` produces is valid against it (``encode`` only leaves
out the fields that are null). For this model the serialization-mode schema is the same.

Print it with ``python -m orch_serv.messages.schema``.
"""

from __future__ import annotations

import json
from typing import Any

from orch_serv.constants import PROTOCOL_VERSION
from orch_serv.messages.envelope import Envelope

#: The title of the published schema (pydantic would call it ``Envelope[Any]``).
SCHEMA_TITLE = "OrchServEnvelope"
#: The JSON Schema dialect pydantic generates.
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def envelope_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the wire envelope, titled ``OrchServEnvelope``.

    A fresh dict on every call; ``$schema``, ``title`` and ``description`` come first, then
    pydantic's own keys in pydantic's order.
    """
    generated = Envelope[Any].model_json_schema(mode="validation")
    generated.pop("title", None)
    generated.pop("description", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": SCHEMA_TITLE,
        "description": (
            f"orch_serv wire envelope, protocol version {PROTOCOL_VERSION} (AMQP header "
            "x-orch-serv-protocol). JSON, UTF-8; unknown fields are ignored; null fields may "
            "be omitted."
        ),
        **generated,
    }


def render_schema() -> str:
    """The schema as indented JSON text (what :func:`main` prints, without the newline)."""
    return json.dumps(envelope_json_schema(), indent=2, ensure_ascii=False)


def main() -> None:
    """Print the envelope's JSON Schema to standard output."""
    print(render_schema())


if __name__ == "__main__":
    main()
