"""The numeric limits of the wire envelope, checked when a message is decoded or built.

JSON numbers have no range, but every consumer of an envelope does: Redis scripts, the
store's JSON encoder (64-bit integers), timers (milliseconds since the epoch), and the
operators' tools. A number outside these limits is bad input:
:func:`orch_serv.messages.codec.decode` rejects it with a
:class:`~orch_serv.exceptions.DecodeError` naming the field, and the message is dead-lettered
instead of being half-processed.

================  ===========================================================================
field             accepted
================  ===========================================================================
``step``          integer, ``0 <= step < 2**31``
``attempt``       integer, ``1 <= attempt < 2**31``
``created_at``    finite float, Unix time from 0 to the start of year 3000
``deadline``      same as ``created_at`` (or absent)
``duration_ms``   finite float, ``0 <= duration_ms <= MAX_DURATION_MS`` (or absent)
JSON values       ``body``, ``progress``, ``error.details`` and ``status.lineage``: every
                  integer within a signed 64-bit range, every float finite (no NaN or
                  Infinity, which JSON cannot carry and the store would turn into null)
``retry_after``   in ``error.details``: a number, ``0 <= retry_after <= MAX_RETRY_AFTER``
================  ===========================================================================
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field

#: Steps and attempts are below 2**31 (a signed 32-bit integer in every language).
MAX_INDEX = 2**31 - 1
#: 3000-01-01T00:00:00Z: the latest Unix time (seconds) an envelope may carry.
MAX_TIMESTAMP = 32_503_680_000.0
#: The longest handler duration a reply may report: 100 years, in milliseconds.
MAX_DURATION_MS = 100 * 365.25 * 24 * 3600 * 1000.0
#: The longest delay (seconds) a handler may ask for with ``RetryAfter``: one year.
MAX_RETRY_AFTER = 365.25 * 24 * 3600
#: Integers inside JSON values are signed 64-bit (what the store and most languages hold).
MIN_JSON_INT = -(2**63)
MAX_JSON_INT = 2**63 - 1


def check_json_numbers(value: Any) -> Any:
    """Return ``value`` unchanged if every number inside it is within the limits of a JSON
    value (integers signed 64-bit, floats finite); raise ``ValueError`` naming the first
    offending path otherwise. Pydantic models and other objects are not looked into."""
    stack: list[Any] = [value]
    pop, extend = stack.pop, stack.extend
    while stack:  # the common case, every number fine: no path is built
        item = pop()
        kind = type(item)
        if kind is int:
            if not MIN_JSON_INT <= item <= MAX_JSON_INT:
                _raise_at(value)
        elif kind is float:
            if not math.isfinite(item):
                _raise_at(value)
        elif kind is dict:
            extend(item.values())
        elif kind is list or kind is tuple:
            extend(item)
        elif isinstance(item, int | float | dict | list | tuple) and not isinstance(item, bool):
            # a subclass of a JSON type (an IntEnum, say): the slow, general way
            if not _fine(item):
                _raise_at(value)
            extend(_children(item))
    return value


def _fine(item: Any) -> bool:
    if isinstance(item, bool) or not isinstance(item, int | float):
        return True
    if isinstance(item, int):
        return MIN_JSON_INT <= item <= MAX_JSON_INT
    return math.isfinite(item)


def _children(item: Any) -> list[Any]:
    if isinstance(item, dict):
        return list(item.values())
    if isinstance(item, list | tuple):
        return list(item)
    return []


def _raise_at(value: Any) -> None:
    """Find the first offending number again, this time with its path, and raise."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not MIN_JSON_INT <= item <= MAX_JSON_INT:
                raise ValueError(
                    f"integer at {path or '<value>'} is outside the signed 64-bit range"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"number at {path or '<value>'} is {item!r}, not a finite number")
        elif isinstance(item, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))


def check_details(details: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate ``ErrorInfo.details``: JSON numbers in range, and a sane ``retry_after``."""
    if details is None:
        return None
    check_json_numbers(details)
    if "retry_after" in details:
        delay = details["retry_after"]
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise ValueError("retry_after must be a number of seconds")
        if not 0 <= delay <= MAX_RETRY_AFTER:
            raise ValueError(
                f"retry_after must be between 0 and {MAX_RETRY_AFTER:.0f} seconds, got {delay!r}"
            )
    return details


#: A step index.
StepIndex = Annotated[int, Field(ge=0, le=MAX_INDEX)]
#: An attempt number.
AttemptNumber = Annotated[int, Field(ge=1, le=MAX_INDEX)]
#: A Unix time in seconds between 1970 and the year 3000.
Timestamp = Annotated[float, Field(ge=0, le=MAX_TIMESTAMP, allow_inf_nan=False)]
#: A duration in milliseconds.
DurationMs = Annotated[float, Field(ge=0, le=MAX_DURATION_MS, allow_inf_nan=False)]
#: Any JSON value whose numbers are within :func:`check_json_numbers`' limits.
JsonValue = Annotated[Any, AfterValidator(check_json_numbers)]


def valid_timestamp(value: Any) -> float | None:
    """``value`` as a float if it is a usable Unix time (finite, 0 to year 3000), else None:
    for data stored before these limits were checked."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if 0 <= number <= MAX_TIMESTAMP else None


__all__ = [
    "MAX_DURATION_MS",
    "MAX_INDEX",
    "MAX_JSON_INT",
    "MAX_RETRY_AFTER",
    "MAX_TIMESTAMP",
    "MIN_JSON_INT",
    "AttemptNumber",
    "DurationMs",
    "JsonValue",
    "StepIndex",
    "Timestamp",
    "check_details",
    "check_json_numbers",
    "valid_timestamp",
]
