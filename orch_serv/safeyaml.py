"""Reading a definition file's YAML safely, shared by every YAML the project loads (flow
files, state charts): a size limit, UTF-8, one document, only plain YAML tags (no
``!!python/...``, no custom tags), no aliases, no duplicate keys; the data comes from
``yaml.safe_load`` only. The node tree from ``yaml.compose`` is kept to say on which line a
field is. Errors are built by the caller's error class (file, problem, line, field).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

import yaml

_TAG = "tag:yaml.org,2002:"
#: The tags plain YAML data resolves to (what ``yaml.safe_load`` builds without any tag).
ALLOWED_TAGS: Final = frozenset(
    _TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)

FieldPath = Sequence[str | int]
E_co = TypeVar("E_co", bound=Exception, covariant=True)


class ErrorFactory(Protocol[E_co]):
    """An error class taking (source, problem, line=, field=), e.g. ``FlowFileError``."""

    def __call__(
        self, source: str, problem: str, *, line: int | None = None, field: str | None = None
    ) -> E_co: ...


def field_name(path: FieldPath) -> str:
    """``flows[0].steps[1].service`` for ``("flows", 0, "steps", 1, "service")``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


@dataclass(frozen=True, slots=True)
class YamlDocument(Generic[E_co]):
    """A file's data and its node tree (for line numbers)."""

    source: str
    data: Any
    root: yaml.Node | None
    make_error: ErrorFactory[E_co]

    def line(self, path: FieldPath) -> int | None:
        """The 1-based line of the field at ``path`` (of its key, in a mapping); for a
        missing field, the line of the nearest mapping or list that holds the path."""
        node = self.root
        best = None if node is None else node.start_mark.line + 1
        for part in path:
            child: yaml.Node | None = None
            line = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == part:
                        child, line = value, key.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                child = node.value[part] if 0 <= part < len(node.value) else None
                line = None if child is None else child.start_mark.line + 1
            if child is None:
                break
            node, best = child, line
        return best

    def error(self, path: FieldPath, problem: str) -> E_co:
        """An error about the field at ``path``."""
        return self.make_error(self.source, problem, line=self.line(path), field=field_name(path))


@dataclass(frozen=True, slots=True)
class YamlKind(Generic[E_co]):
    """What a kind of file is called in messages ("a chart"), how large it may be, and the
    error class its problems are raised as."""

    noun: str
    file_noun: str
    max_bytes: int
    make_error: ErrorFactory[E_co]

    def read(self, text: str | bytes, source: str) -> YamlDocument[E_co]:
        """Check and parse a file's text (see the module docstring)."""
        fail = self.make_error
        size = len(text.encode() if isinstance(text, str) else text)
        if size > self.max_bytes:
            raise fail(
                source,
                f"the file is {size} bytes; {self.file_noun} is at most {self.max_bytes} bytes",
            )
        if isinstance(text, bytes):
            try:
                text = text.decode()
            except UnicodeDecodeError as exc:
                raise fail(source, f"the file is not UTF-8 text ({exc.reason})") from None
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            if root is not None:
                self._check_nodes(root, source)
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = None if mark is None else mark.line + 1
            problem = " ".join(p for p in (exc.context, exc.problem) if p)
            raise fail(source, f"not valid YAML: {problem}", line=line) from None
        except yaml.YAMLError as exc:
            raise fail(source, f"not valid YAML: {exc}") from None
        except RecursionError:
            raise fail(source, f"not {self.noun}: the YAML is nested too deeply") from None
        return YamlDocument(source, data, root, fail)

    def _check_nodes(self, root: yaml.Node, source: str) -> None:
        """Refuse tags other than plain data, aliases and duplicate keys, iteratively (a
        deeply nested file cannot exhaust the stack here)."""
        fail = self.make_error
        seen: set[int] = set()
        # each node with its path and the line it is used on (an alias is reported there:
        # its node is the anchored one, which starts elsewhere)
        todo: list[tuple[yaml.Node, tuple[str | int, ...], int]] = [
            (root, (), root.start_mark.line)
        ]
        while todo:
            node, path, used_at = todo.pop()
            if id(node) in seen:
                raise fail(
                    source,
                    f"YAML aliases (*name) are not allowed in {self.noun}",
                    line=used_at + 1,
                    field=field_name(path),
                )
            seen.add(id(node))
            if node.tag not in ALLOWED_TAGS:
                raise fail(
                    source,
                    f"the YAML tag {node.tag!r} is not allowed ({self.noun} is plain data)",
                    line=node.start_mark.line + 1,
                    field=field_name(path),
                )
            if isinstance(node, yaml.MappingNode):
                keys: set[str] = set()
                children: list[tuple[yaml.Node, tuple[str | int, ...], int]] = []
                for key, value in node.value:
                    name = key.value if isinstance(key, yaml.ScalarNode) else str(key.tag)
                    at = key.start_mark.line
                    if name in keys:
                        raise fail(
                            source,
                            f"the key {name!r} appears twice",
                            line=at + 1,
                            field=field_name((*path, name)),
                        )
                    keys.add(name)
                    children += [(key, (*path, name), at), (value, (*path, name), at)]
                todo.extend(reversed(children))  # visited in document order: anchors first
            elif isinstance(node, yaml.SequenceNode):
                at = node.start_mark.line
                todo.extend(reversed([(item, (*path, i), at) for i, item in enumerate(node.value)]))


__all__ = ["ALLOWED_TAGS", "ErrorFactory", "FieldPath", "YamlDocument", "YamlKind", "field_name"]
