"""Login, sessions and CSRF over HTTP (as a browser sends them), against a real server: no
page without a session, authentication before any lookup, cookies that scripts and other
sites cannot use, every POST refused without the session's CSRF token, scopes enforced."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.constants import RunState
from orch_serv.store.redis import RedisRunStore
from tests.conftest import eventually
from tests.ui.conftest import Ui, csrf_of, http_session

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def _running_run(ui: Ui, name: str) -> str:
    started = ui.tmp / name
    run_id = await ui.running.start("forever", {"started": str(started)})

    async def picked_up() -> bool:
        return await asyncio.to_thread(started.exists)

    await eventually(picked_up)
    return run_id


async def test_pages_redirect_to_login_and_the_rest_is_401_before_any_lookup(ui: Ui) -> None:
    async with httpx.AsyncClient(base_url=ui.server.url) as client:
        page = await client.get("/ui/runs?flow=ship")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login?next=%2Fruns%3Fflow%3Dship"
        assert (await client.get("/ui/")).headers["location"] == "/ui/runs"
        for path in ("/ui/runs/live", "/ui/runs/no-such-run/live"):
            assert (await client.get(path)).status_code == 401
        for path in ("/ui/runs/no-such-run/cancel", "/ui/deadletters/purge"):
            answer = await client.post(path, data={"csrf": "x"})
            assert answer.status_code == 401  # not 404: no oracle of what exists
        # an unknown run behind a login redirect too, not a 404
        assert (await client.get("/ui/runs/no-such-run")).status_code == 303


async def test_login_sets_a_strict_http_only_session_cookie(ui: Ui) -> None:
    async with httpx.AsyncClient(base_url=ui.server.url) as client:
        form = await client.get("/ui/login")
        assert form.headers["content-security-policy"].startswith("default-src 'none'")
        assert form.headers["x-frame-options"] == "DENY"
        login_cookie = form.headers["set-cookie"].lower()
        assert "httponly" in login_cookie and "samesite=strict" in login_cookie
        answer = await client.post(
            "/ui/login",
            data={"csrf": csrf_of(form.text), "token": ui.token(Scope.read), "next": "/flows"},
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/flows"
        cookies = [v.lower() for k, v in answer.headers.multi_items() if k == "set-cookie"]
        session = next(c for c in cookies if c.startswith("orch_serv_ui="))
        for flag in ("httponly", "samesite=strict", "path=/ui", "max-age="):
            assert flag in session
        assert ui.token(Scope.read).lower() not in session  # the token never reaches the browser
        assert (await client.get("/ui/flows")).status_code == 200


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [
        ("", 400, "Enter an API token."),
        ("osk_abc_def", 401, "That token is not valid."),
        ("not even a token", 401, "That token is not valid."),
        ("start", 403, "lacks the &#39;read&#39; scope"),
    ],
)
async def test_a_bad_login_is_refused_with_a_reason(
    ui: Ui, token: str, status: int, message: str
) -> None:
    async with httpx.AsyncClient(base_url=ui.server.url) as client:
        form = await client.get("/ui/login")
        given = ui.token(Scope.start) if token == "start" else token
        answer = await client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": given})
        assert answer.status_code == status
        assert message in answer.text
        assert "orch_serv_ui=" not in answer.headers.get("set-cookie", "")


async def test_login_without_its_csrf_cookie_or_value_is_refused(ui: Ui) -> None:
    token = ui.token(Scope.read)
    async with httpx.AsyncClient(base_url=ui.server.url) as client:
        answer = await client.post("/ui/login", data={"csrf": "guessed", "token": token})
        assert answer.status_code == 403 and "CSRF" in answer.text
        await client.get("/ui/login")  # the cookie is set, but the form's value is wrong
        answer = await client.post("/ui/login", data={"csrf": "guessed", "token": token})
        assert answer.status_code == 403


async def test_every_post_needs_the_sessions_csrf_token(ui: Ui) -> None:
    run_id = await _running_run(ui, "csrf")
    async with http_session(ui, None) as (client, csrf):
        cancel = f"/ui/runs/{run_id}/cancel"
        refused = [
            await client.post(cancel, data={"reason": "no token"}),
            await client.post(cancel, data={"csrf": "wrong"}),
            await client.post(cancel, data={"csrf": csrf}, headers={"origin": "https://evil"}),
            await client.post(
                cancel, content=f"csrf={csrf}", headers={"content-type": "text/plain"}
            ),
            await client.post("/ui/deadletters/purge", data={"csrf": "wrong", "all": "1"}),
            await client.post("/ui/logout", data={"next": "/runs"}),
        ]
        assert [r.status_code for r in refused] == [403, 403, 403, 415, 403, 403]
        assert (await ui.running.get(run_id)).state is RunState.RUNNING  # nothing happened
        done = await client.post(cancel, data={"csrf": csrf}, headers={"origin": ui.server.url})
        assert done.status_code == 303
        assert done.headers["location"] == f"/ui/runs/{run_id}?done=cancel"
        assert (await ui.running.get(run_id)).state is RunState.CANCELLED
        again = await client.post(cancel, data={"csrf": csrf})
        assert again.status_code == 409 and "already CANCELLED" in again.text


async def test_a_read_only_session_cannot_operate(ui: Ui) -> None:
    run_id = await _running_run(ui, "read-only")
    async with http_session(ui, Scope.read) as (client, csrf):
        page = await client.get(f"/ui/runs/{run_id}")
        assert 'id="cancel-run" disabled' in page.text
        answer = await client.post(f"/ui/runs/{run_id}/cancel", data={"csrf": csrf})
        assert answer.status_code == 403 and "lacks the &#39;operate&#39; scope" in answer.text
        answer = await client.post("/ui/deadletters/purge", data={"csrf": csrf, "all": "1"})
        assert answer.status_code == 403
    assert (await ui.running.get(run_id)).state is RunState.RUNNING
    await ui.running.cancel(run_id)


async def test_logout_and_token_revocation_end_the_session(ui: Ui) -> None:
    async with http_session(ui, Scope.read) as (client, csrf):
        assert (await client.post("/ui/logout", data={"csrf": csrf})).status_code == 303
        assert (await client.get("/ui/runs")).status_code == 303  # back to the login page
    store = await _token_store(ui)
    token, _ = await store.create("short-lived", {Scope.read})
    async with httpx.AsyncClient(base_url=ui.server.url) as client:
        form = await client.get("/ui/login")
        await client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": token})
        assert (await client.get("/ui/runs")).status_code == 200
        assert await store.revoke(token)
        assert (await client.get("/ui/runs")).status_code == 303


async def _token_store(ui: Ui) -> TokenStore:
    store = ui.running.store
    assert isinstance(store, RedisRunStore)
    return TokenStore(store.redis, ui.server.settings.key_prefix)
