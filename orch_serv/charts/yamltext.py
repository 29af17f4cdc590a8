"""Reading a chart file's YAML safely: a size limit, one document, only plain YAML tags (no
``!!python/...``, no custom tags), no aliases, no duplicate keys; the data comes from
``yaml.safe_load`` only. The composed node tree is kept to say on which line a field is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from orch_serv.charts.model import ChartError

#: A chart file larger than this is refused before it is parsed.
MAX_CHART_BYTES: Final = 256 * 1024

_TAG = "tag:yaml.org,2002:"
#: The tags plain YAML data resolves to (what ``yaml.safe_load`` builds without any tag).
ALLOWED_TAGS: Final = frozenset(
    _TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)

Path = Sequence[str | int]


def field_name(path: Path) -> str:
    """``states[1].target.name`` for ``("states", 1, "target", "name")``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


@dataclass(frozen=True, slots=True)
class YamlText:
    """A chart file's data and its node tree (for line numbers)."""

    source: str
    data: Any
    root: yaml.Node | None

    def line(self, path: Path) -> int | None:
        """The 1-based line of the value at ``path``; for a missing field, the line of the
        nearest mapping or list that holds the path."""
        node = self.root
        best = None if node is None else node.start_mark.line + 1
        for part in path:
            child: yaml.Node | None = None
            line = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == part:
                        child, line = value, key.start_mark.line + 1  # the key's line
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                child = node.value[part] if 0 <= part < len(node.value) else None
                line = None if child is None else child.start_mark.line + 1
            if child is None:
                break
            node, best = child, line
        return best

    def error(self, path: Path, problem: str) -> ChartError:
        """A :class:`ChartError` about the field at ``path``."""
        return ChartError(self.source, problem, line=self.line(path), field=field_name(path))


def read_yaml(text: str | bytes, source: str) -> YamlText:
    """Check and parse a chart file's text (see the module docstring)."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_CHART_BYTES:
        raise ChartError(
            source, f"the file is {size} bytes; a chart file is at most {MAX_CHART_BYTES} bytes"
        )
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise ChartError(source, f"the file is not UTF-8 text ({exc.reason})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            _check_nodes(root, source)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ChartError(source, f"not valid YAML: {problem}", line=line) from None
    except yaml.YAMLError as exc:
        raise ChartError(source, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise ChartError(source, "not a chart: the YAML is nested too deeply") from None
    return YamlText(source, data, root)


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Refuse tags other than plain data, aliases and duplicate keys, iteratively (a deeply
    nested file cannot exhaust the stack here)."""
    seen: set[int] = set()
    todo: list[tuple[yaml.Node, tuple[str | int, ...], int]] = [(root, (), root.start_mark.line)]
    while todo:
        node, path, line = todo.pop()
        if id(node) in seen:
            raise ChartError(
                source,
                "YAML aliases (*name) are not allowed in a chart",
                line=line + 1,
                field=field_name(path),
            )
        seen.add(id(node))
        if node.tag not in ALLOWED_TAGS:
            raise ChartError(
                source,
                f"the YAML tag {node.tag!r} is not allowed (a chart is plain data)",
                line=node.start_mark.line + 1,
                field=field_name(path),
            )
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            children: list[tuple[yaml.Node, tuple[str | int, ...], int]] = []
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else str(key.tag)
                if name in keys:
                    raise ChartError(
                        source,
                        f"the key {name!r} appears twice",
                        line=key.start_mark.line + 1,
                        field=field_name((*path, name)),
                    )
                keys.add(name)
                children.append((key, (*path, name), key.start_mark.line))
                children.append((value, (*path, name), key.start_mark.line))
            todo.extend(reversed(children))  # visited in document order: anchors first
        elif isinstance(node, yaml.SequenceNode):
            # an alias item is reported at its list's line (its node is the anchored one)
            at = node.start_mark.line
            items = [(item, (*path, i), at) for i, item in enumerate(node.value)]
            todo.extend(reversed(items))


__all__ = ["ALLOWED_TAGS", "MAX_CHART_BYTES", "YamlText", "field_name", "read_yaml"]
