"""``/v1/flows``: the definitions an orchestrator published, and their versions, over a real
server; unknown names and versions are 404s naming the known ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orch_serv.flow.spec import FlowSpec, StepSpec
from tests.api.v1_support import FLOWS, V1, problem, serve_v1

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def _extra(command: str) -> FlowSpec:
    step = StepSpec(index=0, name="only", block="only", service="nobody", command=command)
    return FlowSpec(kind="flow", name="extra", steps=(step,)).with_version()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def v1() -> AsyncIterator[V1]:
    async with serve_v1(stem="v1flows") as env:
        for command in ("first", "second"):  # two versions; the second is current
            await env.running.store.register_specs(
                [_extra(command)], default_flow=None, default_block=None
            )
        yield env


async def test_list_flows_and_blocks(v1: V1) -> None:
    async with v1.client() as client:
        response = await client.get("/v1/flows")
    assert response.status_code == 200
    flows = response.json()["flows"]
    assert [f["name"] for f in flows if f["kind"] == "flow"] == sorted([*FLOWS, "extra"])
    assert [f["name"] for f in flows if f["kind"] == "block"] == ["two"]
    expected = await v1.running.store.list_specs()
    assert flows == [s.model_dump(mode="json") for s in expected]


async def test_get_a_flow_and_a_block(v1: V1) -> None:
    async with v1.client() as client:
        flow = (await client.get("/v1/flows/pipeline")).json()
        block = (await client.get("/v1/flows/two", params={"kind": "block"})).json()
    assert [s["name"] for s in flow["steps"]] == ["one", "two", "three"]
    assert flow["version"] and flow["kind"] == "flow"
    assert (block["kind"], block["name"], len(block["steps"])) == ("block", "two", 1)


async def test_versions_of_a_flow(v1: V1) -> None:
    first, second = _extra("first"), _extra("second")
    async with v1.client() as client:
        versions = (await client.get("/v1/flows/extra/versions")).json()
        old = (await client.get(f"/v1/flows/extra/versions/{first.version}")).json()
        current = (await client.get("/v1/flows/extra")).json()
    assert versions["current"] == second.version
    assert sorted(v["version"] for v in versions["versions"]) == sorted(
        [first.version, second.version]
    )
    assert old == first.model_dump(mode="json")
    assert current == second.model_dump(mode="json")


@pytest.mark.parametrize(
    ("path", "params", "known"),
    [
        ("/v1/flows/pipelin", {}, [*FLOWS, "extra"]),
        ("/v1/flows/pipeline", {"kind": "block"}, ["two"]),
        ("/v1/flows/nope/versions", {}, None),
        ("/v1/flows/nope/versions/abc", {}, None),
        ("/v1/flows/e*a%3F[c]/versions", {}, None),
    ],
)
async def test_unknown_flow_is_404(
    v1: V1, path: str, params: dict[str, str], known: list[str] | None
) -> None:
    async with v1.client() as client:
        response = await client.get(path, params=params)
    document = problem(response, 404)
    if known is not None:
        assert document["known"] == sorted(known)


async def test_unknown_version_is_404_with_the_known_ones(v1: V1) -> None:
    async with v1.client() as client:
        response = await client.get("/v1/flows/extra/versions/nope")
    document = problem(response, 404)
    assert sorted(document["known"]) == sorted([_extra("first").version, _extra("second").version])


async def test_bad_kind_is_422(v1: V1) -> None:
    async with v1.client() as client:
        response = await client.get("/v1/flows/pipeline", params={"kind": "thing"})
    problem(response, 422)
