"""Hooks and services the YAML flow tests name by import path."""

from __future__ import annotations

from typing import Any

from orch_serv import Envelope, Service

#: Not a callable: a hook naming it is refused.
NOT_CALLABLE = 42

service = Service("yamltest")


@service.command("echo")
async def echo(body: dict[str, Any]) -> dict[str, Any]:
    """Return the body."""
    return body


def stamp(message: Envelope[Any]) -> Envelope[Any]:
    """Pre hook: mark the body."""
    if isinstance(message.body, dict):
        message.body["stamped"] = True
    return message


def audit(message: Envelope[Any]) -> Envelope[Any]:
    """Post hook: pass the message on."""
    return message


class Hooks:
    """Hooks grouped in a class (named ``module:Hooks.tag``)."""

    @staticmethod
    def tag(message: Envelope[Any]) -> Envelope[Any]:
        """Pass the message on."""
        return message
