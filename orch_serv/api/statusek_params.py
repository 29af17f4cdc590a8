"""Statusek's request parameters and response envelope.

A request body is one JSON object whose keys match case-insensitively (as Go's decoder
matched them); unknown keys are ignored and missing ones are empty. A body that is not JSON,
not an object, or has a value of the wrong type is refused with PARAMS_PARSING_IS_FAILED
("Error while parameters parsing") and the reason in ``data.errors``; Statusek dropped the
connection instead. Every answer is ``{"status", "message", "data"}``, with the members of
``data`` repeated at the top level, where Statusek's README shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from orch_serv.statusmodel.codes import Code, text

_STRINGS = ("object_name", "status_name", "instance_token", "status_message")
#: Go's int: a 64-bit signed integer.
_INT_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Params:
    """Statusek's ``tParams``: every field optional."""

    object_name: str = ""
    instance_timeout: int | None = None
    status_name: str = ""
    instance_token: str = ""
    status_message: str = ""

    def text(self, code: Code, finished: str = "") -> str:
        """The text of ``code`` with these parameters in its placeholders."""
        return text(
            code,
            object_name=self.object_name,
            instance_token=self.instance_token,
            status_name=self.status_name,
            status_message=self.status_message,
            finished=finished,
        )


class ParamsError(ValueError):
    """The body cannot be read as Statusek's parameters; the message says why."""


def parse(body: bytes) -> Params:
    """The parameters of a request body (raises :class:`ParamsError`)."""
    if not body.strip():
        raise ParamsError("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParamsError(f"the request body is not valid JSON: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"the request body must be a JSON object, not {type(data).__name__}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.lower()
        if name in _STRINGS:
            if value is not None and not isinstance(value, str):
                raise ParamsError(f"{name} must be a string, not {_json_type(value)}")
            values[name] = value or ""
        elif name == "instance_timeout":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ParamsError(
                    f"instance_timeout must be a whole number of seconds, not {_json_type(value)}"
                )
            if value is not None and not 0 <= value <= _INT_MAX:
                raise ParamsError("instance_timeout must be between 0 and 2^63-1 seconds")
            values[name] = value
    return Params(**values)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def answer(
    ok: bool, message: str = "", data: dict[str, Any] | None = None, *, status_code: int = 200
) -> JSONResponse:
    """Statusek's envelope (``application/json``, unlike Statusek's sniffed text/plain)."""
    data = data or {}
    return JSONResponse(
        {**data, "status": ok, "message": message, "data": data}, status_code=status_code
    )


def refused(params: Params, code: Code, finished: str = "", **data: Any) -> JSONResponse:
    """``status: false`` with the text of ``code``."""
    return answer(False, params.text(code, finished), data)


def parsing_failed(reason: str) -> JSONResponse:
    """PARAMS_PARSING_IS_FAILED, with the reason in ``data.errors``."""
    return answer(False, text(Code.PARAMS_PARSING_IS_FAILED), {"errors": [reason]})


__all__ = ["Params", "ParamsError", "answer", "parse", "parsing_failed", "refused"]
