"""Loading an application object from an import path such as ``flows.ingest:orchestrator``,
or from a flow file such as ``flows/ingest.yaml`` (an Orchestrator of its flows)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from orch_serv.exceptions import ConfigurationError


def load(path: str) -> Any:
    """Import ``module:attribute`` (the current directory is importable, like ``python -m``).
    A path ending in ``.yaml``/``.yml`` is a flow file: the result is an
    :class:`~orch_serv.orchestrator.app.Orchestrator` of its flows (docs/flows-yaml.md)."""
    from orch_serv.flow.yamlflows import is_flow_file, load_orchestrator

    if is_flow_file(path):
        return load_orchestrator(path)
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            "expected an import path like 'package.module:name' or a flow file "
            f"'path/flows.yaml', got {path!r}"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:
        raise ConfigurationError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ConfigurationError(f"{module_name!r} has no attribute {attr!r}") from exc
    return obj
