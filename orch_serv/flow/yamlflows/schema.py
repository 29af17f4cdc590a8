"""The JSON Schema of flow files, as published in ``docs/flow.schema.json``.

Generated from :class:`~orch_serv.flow.yamlflows.model.FlowsFile` (pydantic's validation
mode), the model flow files are validated with, so the two cannot drift apart (a test compares
the published file with :func:`render_schema`). Editors that speak the yaml-language-server
protocol validate a flow file whose first line is::

    # yaml-language-server: $schema=../docs/flow.schema.json

Print it with ``python -m orch_serv.flow.yamlflows.schema``.
"""

from __future__ import annotations

import json
from typing import Any

from orch_serv.flow.yamlflows.model import FlowsFile

#: The title of the published schema.
SCHEMA_TITLE = "OrchServFlowFile"
#: The JSON Schema dialect pydantic generates.
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def flow_file_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a flow file; a fresh dict on every call."""
    generated = FlowsFile.model_json_schema(mode="validation")
    generated.pop("title", None)
    generated.pop("description", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": SCHEMA_TITLE,
        "description": (
            "An orch_serv flow file (YAML): flows whose steps name a service and a command, "
            "with retry policies, timeouts, compensations, deadlines and status models. "
            "See docs/flows-yaml.md."
        ),
        **generated,
    }


def render_schema() -> str:
    """The schema as indented JSON text (what :func:`main` prints, without the newline)."""
    return json.dumps(flow_file_json_schema(), indent=2, ensure_ascii=False)


def main() -> None:
    """Print the flow file's JSON Schema to standard output."""
    print(render_schema())


if __name__ == "__main__":
    main()
