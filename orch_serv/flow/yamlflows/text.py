"""Reading a flow file's YAML safely (:mod:`orch_serv.safeyaml`, with the flow file's limit
and error class)."""

from __future__ import annotations

from typing import Final

from orch_serv.exceptions import ConfigurationError
from orch_serv.safeyaml import ALLOWED_TAGS, FieldPath, YamlKind, field_name
from orch_serv.safeyaml import YamlDocument as _Document

#: A flow file larger than this is refused before it is parsed.
MAX_FLOW_FILE_BYTES: Final = 1024 * 1024


class FlowFileError(ConfigurationError):
    """A flow file that cannot be used: the file, the line (1-based) and the field it is
    about (each None when it does not apply), and what is wrong."""

    def __init__(
        self, source: str, problem: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
        self.source = source
        self.line = line
        self.field = field
        self.problem = problem


FLOW_FILE: Final = YamlKind("a flow file", "a flow file", MAX_FLOW_FILE_BYTES, FlowFileError)
#: A flow file's data and its node tree.
YamlDocument = _Document[FlowFileError]


def read_yaml(text: str | bytes, source: str) -> YamlDocument:
    """Check and parse a flow file's text."""
    return FLOW_FILE.read(text, source)


__all__ = [
    "ALLOWED_TAGS",
    "MAX_FLOW_FILE_BYTES",
    "FieldPath",
    "FlowFileError",
    "YamlDocument",
    "field_name",
    "read_yaml",
]
