"""The Client refuses bad starts before anything is written (issue #8), over the real
RabbitMQ and Redis: unknown names, oversized bodies, an idempotency key of another flow."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import orch_serv
from flows.ingest import orchestrator as ingest_app
from orch_serv import Client, FlowNotFound, IdempotencyConflict, MessageTooLarge, Settings
from orch_serv.backends import open_backends
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.base import QueueStats

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """A client over the real servers, in a namespace where flows.ingest is registered (as
    its orchestrators would have done) but no orchestrator consumes anything."""
    small = settings.model_copy(update={"max_message_bytes": 4096})
    async with open_backends(small) as (transport, store):
        registry = ingest_app.registry
        await transport.declare_orchestrator()
        await store.register_specs(
            registry.specs(),
            default_flow=registry.default_flow,
            default_block=registry.default_block,
        )
        yield Client(transport, store, max_message_bytes=small.max_message_bytes)


async def run_keys(client: Client, settings: Settings) -> list[str]:
    """Every Redis key of the namespace (a run would add its hash, events, indexes, key)."""
    store = client.store
    assert isinstance(store, RedisRunStore)
    return sorted([k async for k in store.redis.scan_iter(match=f"{settings.key_prefix}:*")])


async def orchestrator_messages(client: Client) -> int:
    assert client.transport is not None
    stats: QueueStats | None = await client.transport.queue_stats(
        client.transport.topology.orchestrator_queue
    )
    assert stats is not None
    return stats.messages


async def test_an_unknown_flow_is_refused_with_a_suggestion(
    client: Client, settings: Settings
) -> None:
    before = await run_keys(client, settings)
    with pytest.raises(FlowNotFound) as info:
        await client.start("profil", {"path": "a.csv"})
    message = info.value.message
    assert "unknown flow 'profil': did you mean 'profile'?" in message
    assert "registered flows: 'ingest', 'profile'" in message
    with pytest.raises(FlowNotFound, match="unknown block 'validate_cvs': did you mean"):
        await client.start(target="validate_cvs", body={})
    assert await run_keys(client, settings) == before  # nothing written
    assert await orchestrator_messages(client) == 0  # nothing sent


async def test_the_default_flow_applies_only_when_no_flow_is_named(client: Client) -> None:
    run_id = await client.start(None, {"path": "a.csv"})
    record = await client.get(run_id)
    assert (record.kind, record.flow) == ("flow", "ingest")


async def test_an_oversized_start_is_refused_before_anything_is_written(
    client: Client, settings: Settings
) -> None:
    before = await run_keys(client, settings)
    body = {"path": "a.csv", "blob": "x" * 5000}
    with pytest.raises(MessageTooLarge) as info:
        await client.start("ingest", body, key="big-one")
    message = info.value.message
    assert "over the limit of 4096 bytes (max_message_bytes)" in message
    size = int(message.split(" is ")[1].split(" bytes")[0])
    assert size > 5000
    assert await run_keys(client, settings) == before
    assert await client.store.find_by_key("big-one") is None
    assert await orchestrator_messages(client) == 0
    # just under the limit passes
    assert await client.start("ingest", {"path": "a.csv", "blob": "x" * 3000})


async def test_an_idempotency_key_of_another_flow_is_a_conflict(client: Client) -> None:
    first = await client.start("ingest", {"path": "a.csv"}, key="k-1")
    assert await client.start("ingest", {"path": "other.csv"}, key="k-1") == first

    with pytest.raises(IdempotencyConflict) as info:
        await client.start("profile", {"path": "a.csv"}, key="k-1")
    conflict = info.value
    assert (conflict.key, conflict.run_id, conflict.flow, conflict.kind) == (
        "k-1",
        first,
        "ingest",
        "flow",
    )
    assert f"idempotency key 'k-1' already belongs to run {first!r} of flow 'ingest'" in str(
        conflict
    )
    with pytest.raises(IdempotencyConflict, match="not block 'transform'"):
        await client.start(target="transform", body={}, key="k-1")
    assert await client.store.find_by_key("k-1") == first
    assert len(await client.store.list_runs(limit=10)) == 1


def test_the_errors_a_client_catches_are_exported() -> None:
    for name in (
        "OrchServError",
        "RunNotFound",
        "InvalidRunState",
        "FlowNotFound",
        "IdempotencyConflict",
        "MessageTooLarge",
        "DeadLetterNotFound",
        "TransportError",
        "PublishError",
        "StoreError",
        "ConfigurationError",
    ):
        exported = getattr(orch_serv, name)
        assert exported is getattr(orch_serv.exceptions, name)
        assert name in orch_serv.__all__
        assert issubclass(exported, orch_serv.OrchServError)
