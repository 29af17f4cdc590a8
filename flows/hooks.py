"""Orchestrator-side hooks of the example flows, importable by path from their YAML twins
(``post_hook: "flows.hooks:add_provenance"`` in flows/ingest.yaml)."""

from __future__ import annotations

from typing import Any

from orch_serv import Envelope


def add_provenance(message: Envelope[Any]) -> Envelope[Any]:
    """Post hook of ``transform`` (runs in the orchestrator): tell ``publish`` which run and
    flow version produced the file, so that its manifest can say so."""
    if isinstance(message.body, dict):
        message.body["provenance"] = {
            "flow": message.flow or "",
            "flow_version": message.flow_version or "",
            "run_id": message.run_id,
        }
    return message
