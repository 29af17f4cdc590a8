"""Redis Cluster: ``redis+cluster://`` URLs and redis-py's own cluster client.

::

    redis+cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/0]

names some nodes of the cluster (port 6379 when left out); the client discovers the others
and the slot map from them, follows MOVED/ASK redirections and re-reads the map after a
failover. ``rediss+cluster://`` speaks TLS. Every script call of the run store names its keys
and touches one shard's hash slot only (:mod:`orch_serv.store.keys`), so it runs on the
primary that owns the slot; the pipeliner's batches are split per node by redis-py's cluster
pipeline.

Two things redis-py's asyncio cluster client does not offer are handled here: pub/sub (the
"run finished" announcements are read from a plain connection to one node, as Redis Cluster
forwards every ``PUBLISH`` to every node) and the class the rest of the store is typed
against (the cluster client has the same command methods; :func:`cluster_client` hands it
on as a :class:`redis.asyncio.Redis`).
"""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from orch_serv.urls import parse_cluster_url

#: redis-py's connection options that the cluster client takes as they are.
_PASSED = ("decode_responses", "socket_connect_timeout", "socket_timeout", "health_check_interval")


def cluster_client(url: str, **options: Any) -> aioredis.Redis:
    """A client of the Redis Cluster ``url`` names (``options``: redis-py's connection
    options, e.g. ``decode_responses``, ``socket_connect_timeout``)."""
    parsed = parse_cluster_url(url)
    passed = {k: v for k, v in options.items() if k in _PASSED}
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        **passed,
    )
    return cast(aioredis.Redis, client)


def is_cluster(client: object) -> bool:
    """Whether ``client`` is a Redis Cluster client."""
    return isinstance(client, RedisCluster)


def node_client(client: aioredis.Redis) -> aioredis.Redis:
    """A plain client of one primary of the cluster ``client`` talks to (for pub/sub)."""
    cluster = cast(RedisCluster, client)
    node = cluster.get_random_node()
    kwargs = cluster.get_connection_kwargs()
    wanted = ("username", "password", "decode_responses", "socket_connect_timeout")
    options: dict[str, Any] = {k: kwargs[k] for k in wanted if k in kwargs}
    return aioredis.Redis(host=node.host, port=int(node.port), **options)


__all__ = ["cluster_client", "is_cluster", "node_client"]
