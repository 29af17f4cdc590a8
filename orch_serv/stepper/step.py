"""``Step``: a callable and the keyword arguments it is always called with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orch_serv.exc import ExtraAttributeError
from orch_serv.stepper.utils import obj_name, parameters


class Step:
    """``Step(func, **kwargs)``: ``execute(data)`` calls ``func(*data, **kwargs)`` (a value
    that is not a tuple is passed as the one positional argument)."""

    def __init__(self, obj: Callable[..., Any], **kwargs: Any) -> None:
        if not callable(obj):
            raise TypeError("Step `obj` must be a callable")
        params = parameters(obj)
        if kwargs and not any(p.kind is p.VAR_KEYWORD for p in params):
            allowed = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL,)]
            if any(key not in allowed for key in kwargs):
                raise ExtraAttributeError(obj_name(obj), kwargs, allowed)
        self._obj = obj
        self._kwargs = kwargs

    @property
    def obj(self) -> Callable[..., Any]:
        """The step's callable."""
        return self._obj

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments given at declaration."""
        return self._kwargs

    @property
    def name(self) -> str:
        """The callable's name."""
        return obj_name(self._obj)

    def execute(self, data: Any) -> Any:
        """Call the step with ``data`` (a tuple is unpacked into positional arguments)."""
        args = data if isinstance(data, tuple) else (data,)
        return self._obj(*args, **self._kwargs)

    def __str__(self) -> str:
        return f"<Step: obj: {self.name}; kwargs:{self._kwargs}>"

    __repr__ = __str__


__all__ = ["Step"]
