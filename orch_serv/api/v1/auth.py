"""Authentication before anything else, for the operations that take a body.

FastAPI parses a JSON body before it solves an operation's dependencies, so a malformed
body would be answered 400 before the ``ctx.require`` dependency could answer 401. The
route class made here authenticates first (401 without a valid token, whatever the body),
then lets the operation run as declared, its scope checked by its dependency (403)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from orch_serv.api.context import ApiContext


def auth_first(ctx: ApiContext) -> type[APIRoute]:
    """A route class whose requests with a body are authenticated before it is read."""

    class AuthFirstRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            if self.body_field is None:
                return handler

            async def authenticated(request: Request) -> Response:
                await ctx.authenticate(request)
                return await handler(request)

            return authenticated

    return AuthFirstRoute


__all__ = ["auth_first"]
