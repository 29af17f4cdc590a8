"""A registered script falls back to EVAL when the server keeps answering NOSCRIPT (a
promoted Redis Cluster replica while the client's slot map is stale)."""

from __future__ import annotations

from typing import Any

import fakeredis
from redis.exceptions import NoScriptError

from orch_serv.store.scripts import register


class Forgetful(fakeredis.FakeAsyncRedis):
    """A server that never finds a script by its SHA (SCRIPT LOAD does not help)."""

    evalsha_calls = 0

    async def evalsha(self, *args: Any, **kwargs: Any) -> Any:
        type(self).evalsha_calls += 1
        raise NoScriptError("No matching script. Please use EVAL.")


async def test_a_script_the_server_lost_runs_by_its_text() -> None:
    client = Forgetful(decode_responses=True)
    script = register(client, "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] .. '!'")
    assert await script(keys=["k"], args=["v"]) == "v!"
    assert await client.get("k") == "v"
    assert Forgetful.evalsha_calls == 2  # redis-py's own retry, then ours by EVAL
