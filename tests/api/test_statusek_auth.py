"""Who may call the Statusek surface: every route without a token, with a wrong one and with
each scope (401 and 403 in Statusek's envelope, before anything is looked up); and the
surface mounted at the root."""

from __future__ import annotations

import pytest

from orch_serv.api.tokens import Scope
from tests.api.server import ApiServer, api_server

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

#: Route -> the scope it needs.
ROUTES = {
    "": Scope.read,
    "about": Scope.read,
    "instance/create": Scope.start,
    "status/setStatus": Scope.operate,
    "status/setGlobalStatus": Scope.operate,
    "status/checkStatusIsSet": Scope.read,
    "status/checkStatusIsReadyToSet": Scope.read,
    "instance/checkIsFinished": Scope.read,
    "event/getEvents": Scope.read,
    "event/getGlobalEvents": Scope.read,
}
BODY = {"object_name": "2-POINT LINE TASK", "instance_token": "no-such", "status_name": "X"}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_no_token_or_a_wrong_one_is_401(api: ApiServer, route: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer osk_000000000000_wrong"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Basic {api.tokens[Scope.admin]}"},
        {"Authorization": "Bearer"},
    ):
        async with api.client(None) as client:
            response = await client.post(f"/statusek/{route}", json=BODY, headers=headers)
        assert response.status_code == 401, (route, headers)
        assert response.headers["www-authenticate"] == "Bearer"
        document = response.json()
        assert document["status"] is False and document["data"] == {}
        assert "token" in document["message"]


@pytest.mark.parametrize("route", list(ROUTES))
async def test_each_scope(api: ApiServer, route: str) -> None:
    needed = ROUTES[route]
    for scope in Scope:
        async with api.client(scope) as client:
            response = await client.post(f"/statusek/{route}", json=BODY)
        allowed = scope in (needed, Scope.admin)
        assert response.status_code == (200 if allowed else 403), (route, scope)
        if not allowed:
            document = response.json()
            assert document == {
                "status": False,
                "message": f"the token lacks the '{needed.value}' scope",
                "data": {},
            }


async def test_an_unknown_instance_is_401_before_404(api: ApiServer) -> None:
    async with api.client(None) as client:
        response = await client.post("/statusek/event/getEvents", json={"instance_token": "x"})
    assert response.status_code == 401
    assert "not found" not in response.text


async def test_the_surface_at_the_root() -> None:
    async with api_server(env={"ORCH_SERV_API_STATUSEK_AT_ROOT": "1"}, stem="sk") as server:
        async with server.client(Scope.admin) as client:
            created = await client.post(
                "/instance/create", json={"object_name": "2-POINT LINE TASK"}
            )
            token = created.json()["instance_token"]
            events = await client.post("/event/getEvents", json={"instance_token": token})
            assert events.json()["data"] == {"events": []}
            assert (await client.post("/statusek/about")).json()["status"] is True
            assert (await client.get("/healthz")).status_code == 200
        async with server.client(None) as client:
            assert (await client.post("/instance/create", json={})).status_code == 401
