"""Flows declared in YAML (``flows/ingest.yaml``) as well as in Python.

::

    # yaml-language-server: $schema=../docs/flow.schema.json
    flows:
      - name: profile
        steps:
          - {block: validate_csv, service: validator}
          - {block: profile, service: transformer}

:func:`load_orchestrator` reads a file into an :class:`~orch_serv.orchestrator.app.Orchestrator`
(``orch-serv orchestrator flows/ingest.yaml``); :func:`load_flow_file` into its parts. The file
is read with ``yaml.safe_load`` only; hooks and services are Python import paths. A YAML flow
is built into a ``Flow`` subclass, so it has the same spec and version hash as the Python flow
that declares the same steps. Every mistake raises :class:`FlowFileError` naming the file, the
line and the field, and nothing is half-loaded. The format is in docs/flows-yaml.md, its JSON
Schema in docs/flow.schema.json (``python -m orch_serv.flow.yamlflows.schema``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orch_serv.exceptions import OrchServError
from orch_serv.flow.yamlflows.build import FlowFile, Importer, build, validate
from orch_serv.flow.yamlflows.text import MAX_FLOW_FILE_BYTES, FlowFileError, read_yaml

if TYPE_CHECKING:
    from orch_serv.orchestrator.app import Orchestrator

#: File name endings read as flow files where an app's import path is expected.
SUFFIXES = (".yaml", ".yml")


def is_flow_file(path: str) -> bool:
    """Whether an app argument names a flow file rather than an import path."""
    return path.lower().endswith(SUFFIXES)


def _import(path: str) -> object:
    from orch_serv.loader import load

    return load(path)


def parse_flow_file(
    text: str | bytes, source: str = "<flows>", *, importer: Importer = _import
) -> FlowFile:
    """Validate and build a flow file from its YAML text (``source`` names it in errors)."""
    doc = read_yaml(text, source)
    return build(doc, validate(doc), importer)


def load_flow_file(path: str | Path, *, importer: Importer = _import) -> FlowFile:
    """Read, validate and build the flow file at ``path``."""
    source = str(path)
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_FLOW_FILE_BYTES:
            raise FlowFileError(
                source, f"the file is {size} bytes; a flow file is at most {MAX_FLOW_FILE_BYTES}"
            )
        raw = file.read_bytes()
    except OSError as exc:
        raise FlowFileError(source, f"cannot read the file: {exc.strerror or exc}") from None
    return parse_flow_file(raw, source, importer=importer)


def orchestrator_of(flow_file: FlowFile) -> Orchestrator:
    """The orchestrator of a built flow file (its services are those it names)."""
    from orch_serv.orchestrator.app import Orchestrator

    try:
        return Orchestrator(
            flows=list(flow_file.flows),
            blocks=list(flow_file.blocks),
            default_flow=flow_file.default_flow,
            default_block=flow_file.default_block,
            services=list(flow_file.services),
        )
    except (OrchServError, TypeError, ValueError) as exc:
        raise FlowFileError(flow_file.source, str(exc)) from None


def load_orchestrator(path: str | Path, *, importer: Importer = _import) -> Orchestrator:
    """An orchestrator serving the flows (and blocks) of the flow file at ``path``."""
    return orchestrator_of(load_flow_file(path, importer=importer))


__all__ = [
    "SUFFIXES",
    "FlowFile",
    "FlowFileError",
    "is_flow_file",
    "load_flow_file",
    "load_orchestrator",
    "orchestrator_of",
    "parse_flow_file",
]
