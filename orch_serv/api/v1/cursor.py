"""Opaque cursors of run listings: where a page ended, in the order it was read.

A cursor is URL-safe base64 of ``{"o": order, "s": score, "i": run id}``; ``order`` names
the index the listing reads (``created`` or ``state:RUNNING``), so that a cursor is only
accepted by a listing in the same order. A cursor that cannot be read is a 400.
"""

from __future__ import annotations

import base64
import binascii
import math

import orjson

from orch_serv.api.problems import Problem


def encode_cursor(order: str, after: tuple[float, str]) -> str:
    """The cursor of a page that ended at ``after`` (score, run id)."""
    raw = orjson.dumps({"o": order, "s": after[0], "i": after[1]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad() -> Problem:
    return Problem(400, "the cursor is not valid: pass next_cursor as given", title="Bad cursor")


def decode_cursor(cursor: str, order: str) -> tuple[float, str]:
    """(score, run id) from ``cursor``; :class:`Problem` 400 when it is not one of ours or
    belongs to a listing in another order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        score, run_id, its_order = data["s"], data["i"], data["o"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise _bad() from None
    valid = (
        isinstance(score, int | float)
        and not isinstance(score, bool)
        and math.isfinite(score)
        and isinstance(run_id, str)
    )
    if not valid:
        raise _bad()
    if its_order != order:
        raise Problem(
            400,
            f"the cursor belongs to a listing in another order ({its_order!r}, not {order!r}): "
            "keep the filters of the first page",
            title="Bad cursor",
        )
    return float(score), run_id


__all__ = ["decode_cursor", "encode_cursor"]
