"""docs/grafana-dashboard.json is valid JSON, queries only metrics orch_serv exports, and
shows every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from orch_serv.observability.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _exported() -> dict[str, set[str]]:
    """Family name -> the sample names it exports."""
    registry = CollectorRegistry()
    Metrics.create(registry)
    return {f.name: {f.name + s for s in SUFFIXES[f.type]} for f in registry.collect()}


def test_every_panel_queries_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"orch_serv_[a-z_]+", e)}
    every = set().union(*exported.values())
    assert used and used <= every, used - every
    shown = {family for family, names in exported.items() if names & used}
    assert shown == set(exported), set(exported) - shown
