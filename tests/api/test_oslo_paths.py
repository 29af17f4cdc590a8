"""status-from-path (seed-behaviours 4.3, 4.7): the seed's example, lineage files, a path
repeated in one trace or shared by two, the base64 variants."""

from __future__ import annotations

import base64
import uuid

import pytest

from orch_serv.api.tokens import Scope
from tests.api import oslo_support
from tests.api.oslo_support import EXAMPLE_B64, EXAMPLE_PATH, Surface, b64, create, event

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

surface = oslo_support.surface


# -- test_get_status_from_s3_path --------------------------------------------------------------
async def test_status_from_path_finds_the_trace_of_the_seed_example(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client, s3_path=EXAMPLE_PATH)
        response = await client.get(f"/status-from-path/{EXAMPLE_B64}")
    assert response.status_code == 200
    assert response.json() == {"id": trace_id, "trace_id": trace_id}


async def test_status_from_path_finds_a_lineage_file_of_an_update(surface: Surface) -> None:
    path = f"processed/{uuid.uuid4().hex}/file.parquet"
    async with surface.client() as client:
        trace_id = await create(client)
        body = event(status_body={"files_incoming": ["raw/x"], "files_outgoing": [path]})
        await client.post(f"/status/{trace_id}", json=body)
        response = await client.get(f"/status-from-path/{b64(path)}")
    assert response.json() == {"id": trace_id, "trace_id": trace_id}


async def test_status_from_path_with_the_path_repeated_in_one_trace(surface: Surface) -> None:
    path = f"incoming/{uuid.uuid4().hex}.xlsx"
    async with surface.client() as client:
        trace_id = await create(client, s3_path=path)
        await client.post(f"/status/{trace_id}", json=event(s3_path=path))
        response = await client.get(f"/status-from-path/{b64(path)}")
    assert response.status_code == 200  # the seed answered 404 here
    assert response.json()["trace_id"] == trace_id


async def test_status_from_path_of_two_traces_is_the_newest(surface: Surface) -> None:
    path = f"incoming/{uuid.uuid4().hex}.xlsx"
    async with surface.client() as client:
        await create(client, s3_path=path)
        newest = await create(client, s3_path=path)
        response = await client.get(f"/status-from-path/{b64(path)}")
    assert response.json() == {"id": newest, "trace_id": newest}


async def test_status_from_path_accepts_url_safe_and_unpadded_base64(surface: Surface) -> None:
    path = f"incoming/{uuid.uuid4().hex}/a?b>c~.xlsx"
    encoded = base64.urlsafe_b64encode(path.encode()).decode().rstrip("=")
    async with surface.client() as client:
        trace_id = await create(client, s3_path=path)
        response = await client.get(f"/status-from-path/{encoded}")
    assert response.json()["trace_id"] == trace_id


async def test_status_from_path_of_a_standard_base64_with_a_slash(surface: Surface) -> None:
    path = f"???/{uuid.uuid4().hex}.xlsx"  # base64 "Pz8/..."
    encoded = base64.b64encode(path.encode()).decode()
    assert "/" in encoded
    async with surface.client() as client:
        trace_id = await create(client, s3_path=path)
        response = await client.get(f"/status-from-path/{encoded}")
    assert response.json()["trace_id"] == trace_id


async def test_status_from_path_of_an_unknown_path_is_404(surface: Surface) -> None:
    async with surface.client(Scope.read) as client:
        response = await client.get(f"/status-from-path/{b64('never/seen.csv')}")
    assert response.status_code == 404
    assert response.json() == {"message": "Could not find item"}
