"""The runs page's query: filters read from the URL (a 400 page for a bad one), the opaque
cursor of server-side paging, and the run counts per state."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.datastructures import QueryParams

from orch_serv.api.ui.session import UiError
from orch_serv.constants import RunState
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.redis_reads import RunQuery

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE = 50
#: How many index entries one count per state looks at, with a flow filter (beyond it the
#: count reads "N+").
COUNT_LIMIT = 100_000
_MAX_TEXT = 300
_BAD_CURSOR = "the page cursor is not valid: start again from the first page"


def _text(params: QueryParams, name: str) -> str | None:
    value = params.get(name, "").strip()
    if len(value) > _MAX_TEXT:
        raise UiError(400, f"'{name}' is longer than {_MAX_TEXT} characters")
    return value or None


def parse_time(value: str | None, name: str) -> float | None:
    """Unix time from ``2026-12-01T02:48``, ``2026-12-01 02:48:43Z``, an ISO date with an
    offset (a time without one is UTC), or a Unix time in seconds; a 400 page otherwise."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(number) and number >= 0:
            return number
        raise UiError(400, f"'{name}' must be a time, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise UiError(
            400, f"'{name}' must be a time like 2026-12-01T02:48 (UTC), got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def encode_cursor(after: tuple[float, str]) -> str:
    """Where the next page starts, as an opaque URL-safe string."""
    return base64.urlsafe_b64encode(orjson.dumps([after[0], after[1]])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The inverse of :func:`encode_cursor`; a 400 page for anything else."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        score, run_id = data
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise UiError(
            400, "the page cursor is not valid: start again from the first page"
        ) from None
    if not (
        isinstance(score, int | float)
        and not isinstance(score, bool)
        and math.isfinite(score)
        and isinstance(run_id, str)
    ):
        raise UiError(400, _BAD_CURSOR)
    return float(score), run_id


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What the runs page shows: filters, page size and where the page starts."""

    flow: str | None = None
    state: RunState | None = None
    key: str | None = None
    run_id: str | None = None
    since: float | None = None
    until: float | None = None
    since_text: str = ""
    until_text: str = ""
    limit: int = DEFAULT_PAGE
    after: tuple[float, str] | None = None

    @classmethod
    def parse(cls, params: QueryParams) -> RunFilter:
        """The filter of a runs page URL; a 400 page names the first bad parameter."""
        state_text = _text(params, "state")
        state = None
        if state_text is not None:
            try:
                state = RunState(state_text.upper())
            except ValueError:
                known = ", ".join(s.value for s in RunState)
                raise UiError(400, f"unknown state {state_text!r}; known: {known}") from None
        limit_text = _text(params, "limit")
        limit = DEFAULT_PAGE
        if limit_text is not None:
            if not limit_text.isdigit() or int(limit_text) not in PAGE_SIZES:
                sizes = ", ".join(map(str, PAGE_SIZES))
                raise UiError(400, f"'limit' must be one of {sizes}, got {limit_text!r}")
            limit = int(limit_text)
        since_text, until_text = _text(params, "since"), _text(params, "until")
        since, until = parse_time(since_text, "since"), parse_time(until_text, "until")
        if since is not None and until is not None and since > until:
            raise UiError(400, "'since' is after 'until': nothing can match")
        cursor = _text(params, "after")
        return cls(
            flow=_text(params, "flow"),
            state=state,
            key=_text(params, "key"),
            run_id=_text(params, "id"),
            since=since,
            until=until,
            since_text=since_text or "",
            until_text=until_text or "",
            limit=limit,
            after=decode_cursor(cursor) if cursor else None,
        )

    def query(self) -> RunQuery:
        """What :meth:`RedisReads.page_runs` reads."""
        return RunQuery(
            flow=self.flow, state=self.state, since=self.since, until=self.until, after=self.after
        )

    def params(self, **change: Any) -> str:
        """The URL query of this filter (with ``change`` applied), without empty values."""
        values: dict[str, Any] = {
            "flow": self.flow,
            "state": self.state.value if self.state else None,
            "key": self.key,
            "since": self.since_text or None,
            "until": self.until_text or None,
            "limit": self.limit if self.limit != DEFAULT_PAGE else None,
        }
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v is not None})

    def first_page(self) -> RunFilter:
        """The same filter from the first page."""
        return replace(self, after=None)


async def state_counts(store: RedisRunStore, flow: str | None) -> dict[RunState, str]:
    """Runs per state (of ``flow`` when given), as text: ``"12"``, or ``"100000+"``."""
    shards = store.keys.every_shard
    pipe = store.redis.pipeline(transaction=False)
    for state in RunState:
        for shard in shards:  # each shard's two indexes share its hash slot
            if flow is None:
                pipe.zcard(shard.state_index(state.value))
            else:
                indexes = [shard.state_index(state.value), shard.flow_index(flow)]
                pipe.zintercard(2, indexes, limit=COUNT_LIMIT)
    counts = await pipe.execute()
    per_state = [sum(counts[i : i + len(shards)]) for i in range(0, len(counts), len(shards))]
    return {
        state: f"{count}+" if flow is not None and count >= COUNT_LIMIT else str(count)
        for state, count in zip(RunState, per_state, strict=True)
    }


__all__ = [
    "PAGE_SIZES",
    "RunFilter",
    "decode_cursor",
    "encode_cursor",
    "parse_time",
    "state_counts",
]
