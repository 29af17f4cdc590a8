"""Reading a chart file's YAML safely (:mod:`orch_serv.safeyaml`, with the chart's limit and
error class)."""

from __future__ import annotations

from typing import Final

from orch_serv.charts.model import ChartError
from orch_serv.safeyaml import ALLOWED_TAGS, YamlDocument, YamlKind, field_name
from orch_serv.safeyaml import FieldPath as Path

#: A chart file larger than this is refused before it is parsed.
MAX_CHART_BYTES: Final = 256 * 1024

CHART: Final = YamlKind("a chart", "a chart file", MAX_CHART_BYTES, ChartError)
#: A chart file's data and its node tree.
YamlText = YamlDocument[ChartError]


def read_yaml(text: str | bytes, source: str) -> YamlText:
    """Check and parse a chart file's text."""
    return CHART.read(text, source)


__all__ = ["ALLOWED_TAGS", "MAX_CHART_BYTES", "Path", "YamlText", "field_name", "read_yaml"]
