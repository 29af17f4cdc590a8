"""The file paths a run's history records: the lineage body of a status event
(``files_incoming`` / ``files_outgoing``, as ``ctx.status(..., lineage=...)`` and the Oslo
``status_body`` carry them) and an Oslo event's ``s3_path``. The store indexes them so that a
run can be found by a path (``GET /status-api/status-from-path/...``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

#: The lineage lists whose string entries are indexed.
LINEAGE_LISTS: Final = ("files_incoming", "files_outgoing")
#: At most this many paths of one event are indexed (the rest are kept in the history, not
#: in the index): an index entry costs a sorted-set member each.
MAX_PATHS: Final = 256
#: A longer path is not indexed (it would make a Redis key of that length).
MAX_PATH_CHARS: Final = 4096


def lineage_paths(body: Any, *extra: Any) -> list[str]:
    """The distinct paths of a lineage ``body`` (the string entries of its
    ``files_incoming`` and ``files_outgoing`` lists, and its ``s3_path`` if a string), then
    the ``extra`` ones that are strings: empty strings, non-strings and over-long paths are
    skipped, at most :data:`MAX_PATHS` are returned, in order of appearance."""
    found: list[Any] = []
    if isinstance(body, dict):
        for name in LINEAGE_LISTS:
            entries = body.get(name)
            if isinstance(entries, list):
                found.extend(entries)
        found.append(body.get("s3_path"))
    found.extend(extra)
    return _distinct(found)


def _distinct(candidates: Iterable[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for item in candidates:
        if isinstance(item, str) and item and len(item) <= MAX_PATH_CHARS:
            seen.setdefault(item, None)
            if len(seen) >= MAX_PATHS:
                break
    return list(seen)


__all__ = ["LINEAGE_LISTS", "MAX_PATHS", "MAX_PATH_CHARS", "lineage_paths"]
