"""The health page: every queue (depth, consumers), the orchestrator replicas alive, the
timer backlog and the dead-letter queue, with show, replay and purge (``operate``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request

from orch_serv import render
from orch_serv.api.context import ApiContext
from orch_serv.api.tokens import Scope
from orch_serv.api.ui.session import Sessions, UiError, check_csrf, read_form
from orch_serv.api.ui.templating import page, redirect
from orch_serv.transport.base import DeadLetter, QueueStats

#: Dead letters listed on the page, and looked through to show one.
LIST_LETTERS, SCAN_LETTERS = 100, 10_000


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A queue as the page shows it: whose it is and what the broker says (None: missing)."""

    name: str
    role: str
    stats: QueueStats | None

    @property
    def problem(self) -> str | None:
        """Why an operator should look: missing, or no consumer (the dead-letter queue
        needs none)."""
        if self.stats is None:
            return "queue missing"
        if self.stats.consumers == 0 and self.role != "dead letters":
            return "no consumer"
        return None


@dataclass(frozen=True, slots=True)
class TimerBacklog:
    """The timer set: timers in all, those already due, and how late the oldest due is."""

    total: int
    due: int
    lag: float | None


async def timer_backlog(ctx: ApiContext, now: float) -> TimerBacklog:
    """Read every shard's timer set (three cheap commands each, in one round trip)."""
    store = await ctx.backends.store()
    pipe = store.redis.pipeline(transaction=False)
    for shard in store.keys.every_shard:
        pipe.zcard(shard.timers)
        pipe.zcount(shard.timers, "-inf", int(now * 1000))
        pipe.zrange(shard.timers, 0, 0, withscores=True)
    replies = await pipe.execute()
    total = sum(int(n) for n in replies[0::3])
    due = sum(int(n) for n in replies[1::3])
    firsts = [float(first[0][1]) / 1000 for first in replies[2::3] if first]
    lag = now - min(firsts) if firsts and due else None
    return TimerBacklog(total, due, lag)


async def queues(ctx: ApiContext) -> list[QueueRow]:
    """The orchestrator queue, each service queue the registered flows use, the dead-letter
    queue."""
    store, transport = await ctx.backends.store(), await ctx.backends.transport()
    topology = transport.topology
    services = sorted({step.service for spec in await store.list_specs() for step in spec.steps})
    wanted = [(topology.orchestrator_queue, "orchestrator")]
    wanted += [(topology.service_queue(s), f"service {s}") for s in services]
    wanted.append((topology.dead_letter_queue, "dead letters"))
    return [QueueRow(name, role, await transport.queue_stats(name)) for name, role in wanted]


def _done_notice(done: str | None, n: str | None, failed: str | None) -> str | None:
    count = int(n) if n and n.isdigit() else 0
    missed = int(failed) if failed and failed.isdigit() else 0
    if done == "replay":
        extra = f"; {missed} could not be replayed and stay in the queue" if missed else ""
        return f"Replayed {count} dead letter(s){extra}."
    if done == "purge":
        return f"Purged {count} dead letter(s)."
    return None


def router(ctx: ApiContext, sessions: Sessions) -> APIRouter:
    """``GET /health``, ``GET /deadletters/{id}``, ``POST /deadletters/replay|purge``."""
    api = APIRouter()

    @api.get("/health", include_in_schema=False)
    async def health(
        request: Request, done: str | None = None, n: str | None = None, failed: str | None = None
    ) -> Any:
        viewer = await sessions.require(request)
        now = time.time()
        store, transport = await ctx.backends.store(), await ctx.backends.transport()
        horizon = 3 * ctx.settings.presence_interval_seconds
        replicas = await store.replicas(ctx.settings.namespace).live(
            now=now, seen_after=now - horizon
        )
        letters = await transport.dead_letters(LIST_LETTERS)
        rows = await queues(ctx)
        dead = next((r.stats for r in rows if r.role == "dead letters"), None)
        return page(
            request,
            "health.html",
            queues=rows,
            replicas=sorted(replicas, key=lambda r: r.replica_id),
            now=now,
            horizon=horizon,
            timers=await timer_backlog(ctx, now),
            letters=letters,
            dead_total=dead.messages if dead else len(letters),
            notice=_done_notice(done, n, failed),
            can_operate=viewer.can_operate,
            namespace=ctx.settings.namespace,
            title="Health",
        )

    async def find(letter_id: str) -> DeadLetter:
        transport = await ctx.backends.transport()
        for letter in await transport.dead_letters(SCAN_LETTERS):
            if letter.message_id == letter_id:
                return letter
        raise UiError(404, f"no dead letter has the id {letter_id!r}", title="Not found")

    @api.get("/deadletters/{letter_id}", include_in_schema=False)
    async def show(request: Request, letter_id: str) -> Any:
        viewer = await sessions.require(request)
        letter = await find(letter_id)
        return page(
            request,
            "deadletter.html",
            letter=render.dead_json(letter, full=True),
            can_operate=viewer.can_operate,
            title=f"Dead letter {letter_id}",
        )

    async def chosen(request: Request) -> list[str] | None:
        """The letter ids the form names (None: all of them, confirmed)."""
        viewer = await sessions.require(request, Scope.operate)
        form = await read_form(request)
        check_csrf(request, viewer.csrf, form)
        if form.get("all") == "1":
            if form.get("confirm") != "yes":
                raise UiError(400, "tick the confirmation box to act on every dead letter")
            return None
        letter_id = form.get("id", "").strip()
        if not letter_id:
            raise UiError(400, "the form names no dead letter (id) and not 'all'")
        await find(letter_id)  # unknown: a 404, and nothing is done
        return [letter_id]

    @api.post("/deadletters/replay", include_in_schema=False)
    async def replay(request: Request) -> Any:
        ids = await chosen(request)
        result = await (await ctx.backends.transport()).replay_dead_letters(ids)
        failed = len(result.failed) + len(result.missing)
        return redirect(request, f"/health?done=replay&n={len(result.replayed)}&failed={failed}")

    @api.post("/deadletters/purge", include_in_schema=False)
    async def purge(request: Request) -> Any:
        ids = await chosen(request)
        purged = await (await ctx.backends.transport()).purge_dead_letters(ids)
        return redirect(request, f"/health?done=purge&n={purged}")

    return api


__all__ = ["QueueRow", "TimerBacklog", "queues", "router", "timer_backlog"]
