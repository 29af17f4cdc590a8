"""State charts (StateService's YAML machines): loading and validating them
(:func:`load_chart`, :func:`parse_chart`), the compiled :class:`Chart`. Machines of a chart
live in Redis: :class:`orch_serv.store.charts.ChartStore`."""

from orch_serv.charts.loader import load_chart, parse_chart
from orch_serv.charts.model import Chart, ChartError, ChartNotFound, ChartState, Func

__all__ = [
    "Chart",
    "ChartError",
    "ChartNotFound",
    "ChartState",
    "Func",
    "load_chart",
    "parse_chart",
]
