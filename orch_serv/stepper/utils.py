"""Type checks between consecutive steps (``StepsBuilder(..., is_validate_consistency_steps=
True)``): each step's parameters against the previous step's return annotation."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

_MISSING = object()


def obj_name(obj: Any) -> str:
    """A readable name for a step's callable."""
    return str(getattr(obj, "__name__", None) or type(obj).__name__)


def strip_optional(annotation: Any) -> Any:
    """``Optional[X]`` (``X | None``) becomes ``X``; anything else is unchanged."""
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        if len(args) == 1:
            return args[0]
    return annotation


def returned_types(obj: Callable[..., Any]) -> list[Any] | None:
    """The types ``obj`` returns, one per position (``tuple[A, B]`` gives two); None when it
    has no return annotation."""
    annotation = hints(obj).get("return", _MISSING)
    if annotation is _MISSING:
        return None
    annotation = strip_optional(annotation)
    if get_origin(annotation) is tuple:
        args = get_args(annotation)
        if args and args[-1] is not Ellipsis:
            return [strip_optional(a) for a in args]
    return [annotation]


def hints(obj: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of ``obj`` (empty when they cannot be resolved)."""
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__
    try:
        return get_type_hints(target)
    except (NameError, TypeError):
        return {}


def parameters(obj: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters of ``obj`` (empty when it has no signature)."""
    try:
        return list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return []


def check_step(obj: Callable[..., Any], kwargs: dict[str, Any], given: list[Any]) -> list[str]:
    """The errors of a step whose positional parameters receive values of ``given`` types."""
    errors: list[str] = []
    annotations = hints(obj)
    positional = [
        p
        for p in parameters(obj)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    takes_var_kw = any(p.kind is p.VAR_KEYWORD for p in parameters(obj))
    index = 0
    for param in positional:
        if param.kind is not param.KEYWORD_ONLY and index < len(given):
            expected = annotations.get(param.name, _MISSING)
            passed = given[index]
            index += 1
            if expected is _MISSING:
                warnings.warn(
                    f"Parameter `{param.name}` of step `{obj_name(obj)}` is not annotated: "
                    "its type cannot be checked",
                    stacklevel=4,
                )
            elif strip_optional(expected) != passed and expected != passed:
                errors.append(
                    f"Expected and passed type do not match. Expected `{expected}`, "
                    f"passed `{passed}`"
                )
            continue
        if param.name in kwargs or param.default is not param.empty or takes_var_kw:
            continue
        errors.append(
            f"No value for variable `{param.name}`. Provide a default value or pass a value "
            "when initializing the step"
        )
    return errors


__all__ = ["check_step", "hints", "obj_name", "parameters", "returned_types", "strip_optional"]
