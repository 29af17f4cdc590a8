"""Status models from YAML (``yaml.safe_load``)::

    name: ORDER
    timeout_seconds: 600        # optional: the default instance timeout
    statuses:
      - {name: ACCEPTED, type: MANDATORY}
      - {name: PACKED, type: OPTIONAL, after: [ACCEPTED]}
      - {name: CANCELLED, type: STOP, after: [ACCEPTED]}
      - {name: SHIPPED, type: MANDATORY, after: [ACCEPTED], description: On its way}

A file holds one model (a mapping), a list of models, or ``{models: [...]}``. Every mistake
raises :class:`StatusModelError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orch_serv.exceptions import OrchServError
from orch_serv.statusmodel.model import StatusModel


class StatusModelError(OrchServError):
    """A status model definition is invalid (the message names the source and the field)."""


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_models(data: Any, source: str = "<data>") -> list[StatusModel]:
    """Models from already-parsed data (a mapping, a list, or ``{models: [...]}``)."""
    if isinstance(data, dict) and set(data) == {"models"}:
        items, base = data["models"], "models"
    elif isinstance(data, list):
        items, base = data, ""
    elif isinstance(data, dict):
        items, base = [data], None
    else:
        raise StatusModelError(
            f"{source}: expected a status model (a mapping), a list of them or "
            f"{{models: [...]}}, not {type(data).__name__}"
        )
    if not isinstance(items, list) or not items:
        raise StatusModelError(f"{source}: models: expected a non-empty list")
    models: list[StatusModel] = []
    for index, item in enumerate(items):
        prefix = "" if base is None else (f"{base}[{index}]" if base else f"[{index}]")
        if not isinstance(item, dict):
            raise StatusModelError(f"{source}: {prefix or 'model'}: expected a mapping")
        try:
            models.append(StatusModel.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = _where(tuple(first["loc"]))
            where = ".".join(p for p in (prefix, field) if p) or "model"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise StatusModelError(f"{source}: {where}: {message}") from None
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StatusModelError(f"{source}: model {duplicates[0]!r} is defined twice")
    return models


def loads_models(text: str, source: str = "<string>") -> list[StatusModel]:
    """Models from YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StatusModelError(f"{source}: not valid YAML: {exc}") from None
    return parse_models(data, source)


def load_models(path: str | Path) -> list[StatusModel]:
    """Models from a YAML file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StatusModelError(f"{path}: cannot read: {exc}") from None
    return loads_models(text, str(path))


__all__ = ["StatusModelError", "load_models", "loads_models", "parse_models"]
