"""The bridge: an orch_serv 0.2 orchestrator served distributed, unchanged.

``Bridge(orchestrator_02)`` turns each 0.2 flow into a distributed flow (each block a step
run by the service ``orch_serv_02``, command ``<flow>.<block>``) and each target block into a
block run (command ``target.<block>``), and builds that service from the same blocks. Both
sides load the same application object, so ``orch-serv orchestrator MODULE:obj`` and
``orch-serv service MODULE:obj`` need nothing more. The user's message travels as the body
(:mod:`orch_serv.legacy02.wire`) and is rebuilt with its own class on each side.

Per step, as in 0.2: the block's pre hook runs in the orchestrator (a falsy return ends the run
there, SUCCEEDED); the service records the block as the source and runs ``process``; the
block's post hook runs in the orchestrator with the returned message, or with a copy of the
input when ``process`` returned nothing and the block's
``is_execute_after_nullable_process_msg`` is true. The next step receives the returned message
(or the input, as ``process`` left it). A target runs ``process`` only (no hooks, no source).
Retries, timeouts and deadlines: ``retry_policy``/``timeouts``/``deadline`` attributes of a
0.2 flow class, ``retry``/``timeouts`` of a block class, as for distributed flows.
"""

from __future__ import annotations

import inspect
import re
from copy import deepcopy
from typing import Any

from orch_serv.exceptions import FlowNotFound, UniqueNameException
from orch_serv.flow.block import Block
from orch_serv.flow.flow import Flow, FlowBlock, FlowBuilder
from orch_serv.flow.hooks import Hook
from orch_serv.legacy02 import wire
from orch_serv.legacy02.message import BaseOrchServMsg
from orch_serv.legacy02.orchestrators import AsyncOrchestrator, SyncOrchestrator
from orch_serv.legacy02.service_specs import message_class
from orch_serv.messages.envelope import Envelope
from orch_serv.service.definition import Service

#: The service that runs the blocks of a bridged 0.2 orchestrator.
SERVICE = "orch_serv_02"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def safe_name(name: str) -> str:
    """A 0.2 name (which may hold spaces) as a queue- and key-safe identifier."""
    return _UNSAFE.sub("_", name)[:128] or "_"


async def _call(hook: Any, message: Any) -> Any:
    result = hook(message)
    if inspect.isawaitable(result):
        result = await result
    return result


def pre_hook(block: Any) -> Hook | None:
    """The block's 0.2 pre hook, on the command envelope."""
    hook = block.pre_handler_function
    if hook is None:
        return None
    expected = message_class(block.process)

    async def pre(envelope: Envelope[Any]) -> Envelope[Any] | None:
        result = await _call(hook, wire.load(envelope.body, expected))
        if not result:
            return None
        envelope.body = wire.dump(result)
        return envelope

    pre.__qualname__ = f"pre:{safe_name(block.name_block)}"
    return pre


def post_hook(block: Any) -> Hook | None:
    """The block's 0.2 post hook, on the reply envelope (its return value is ignored)."""
    hook = block.post_handler_function
    if hook is None:
        return None

    async def post(envelope: Envelope[Any]) -> None:
        body = envelope.body
        if not wire.flag(body, "empty"):
            await _call(hook, wire.load(body))
        elif block.is_execute_after_nullable_process_msg:
            await _call(hook, wire.load_flagged(body, "input"))

    post.__qualname__ = f"post:{safe_name(block.name_block)}"
    return post


def step_handler(block: Any, is_async: bool) -> Any:
    """The service's handler of one step: source, process, the result (or the input)."""

    def finish(message: Any, copy: Any, new: Any) -> dict[str, Any]:
        if new:
            return wire.dump(new)
        return wire.dump(message, empty=True, input=copy.model_dump(mode="json"))

    expected = message_class(block.process)

    def run(body: Any) -> dict[str, Any]:
        message = wire.load(body, expected)
        message.set_source(block.name_block)
        copy = deepcopy(message)
        return finish(message, copy, block.process(message))

    async def run_async(body: Any) -> dict[str, Any]:
        message = wire.load(body, expected)
        message.set_source(block.name_block)
        copy = deepcopy(message)
        return finish(message, copy, await block.process(message))

    return run_async if is_async else run


def target_handler(block: Any, is_async: bool) -> Any:
    """The service's handler of a target block: ``process`` only, as 0.2's orchestrator."""
    expected = message_class(block.process)

    def run(body: Any) -> dict[str, Any]:
        message = wire.load(body, expected)
        return wire.dump(block.process(message) or message)

    async def run_async(body: Any) -> dict[str, Any]:
        message = wire.load(body, expected)
        return wire.dump(await block.process(message) or message)

    return run_async if is_async else run


def _safe_names(names: list[str], kind: str) -> dict[str, str]:
    """``{name: safe name}``; two names that become the same safe name are an error."""
    found: dict[str, str] = {}
    for name in names:
        safe = safe_name(name)
        clash = [other for other, s in found.items() if s == safe]
        if clash:
            raise UniqueNameException(
                f"The 0.2 {kind} {clash[0]!r} and {name!r} both become {safe!r} when run "
                "distributed (names are made queue- and key-safe): rename one"
            )
        found[name] = safe
    return found


class Bridge:
    """A 0.2 orchestrator's flows and blocks as distributed definitions and one service."""

    def __init__(self, legacy: SyncOrchestrator, *, service: str = SERVICE) -> None:
        if not isinstance(legacy, SyncOrchestrator):
            raise TypeError(f"Bridge needs a SyncOrchestrator or AsyncOrchestrator, not {legacy!r}")
        self.legacy = legacy
        self.is_async = isinstance(legacy, AsyncOrchestrator)
        self.service = Service(service)
        self.flows: list[type[Flow]] = []
        self.blocks: list[Block] = []
        self.flow_names = _safe_names(legacy.get_list_flows(), "flows")
        self.block_names = _safe_names(legacy.get_list_blocks(), "blocks")
        for name in legacy.get_list_flows():
            self.flows.append(self._flow(name, legacy.get_flow(name)))
        for name in legacy.get_list_blocks():
            block = legacy.get_block(name)
            command = safe_name(f"target.{name}")
            self.service.command(command)(target_handler(block, self.is_async))
            self.blocks.append(Block(self.block_names[name], service=service, command=command))

    def _flow(self, name: str, flow: Any) -> type[Flow]:
        steps = []
        for block in flow.blocks():
            command = safe_name(f"{name}.{block.name_block}")
            self.service.command(command)(step_handler(block, self.is_async))
            step = Block(
                safe_name(block.name_block),
                service=self.service.name,
                command=command,
                retry=getattr(block, "retry", None),
                timeouts=getattr(block, "timeouts", None),
            )
            steps.append(FlowBlock(step, pre_hook(block), post_hook(block)))
        attrs = {
            "name_flow": self.flow_names[name],
            "steps_flow": FlowBuilder(*steps),
            "retry_policy": getattr(flow, "retry_policy", None),
            "timeouts": getattr(flow, "timeouts", None),
            "deadline": getattr(flow, "deadline", None),
            "__module__": type(flow).__module__,
        }
        return type(f"{type(flow).__name__}Distributed", (Flow,), attrs)

    def orchestrator(self) -> Any:
        """The distributed :class:`~orch_serv.orchestrator.app.Orchestrator` (with the
        service, for ``orch-serv dev``)."""
        from orch_serv.orchestrator.app import Orchestrator

        legacy = self.legacy
        return Orchestrator(
            flows=self.flows or None,
            blocks=self.blocks or None,
            default_flow=None if legacy.default_flow is None else safe_name(legacy.default_flow),
            default_block=None if legacy.default_block is None else safe_name(legacy.default_block),
            services=[self.service],
        )

    def route(self, message: BaseOrchServMsg[Any, Any]) -> tuple[str | None, str | None]:
        """``(flow, target)`` of the distributed run a 0.2 message starts, by 0.2's rules:
        the target first, unknown names fall back to the defaults. Raises
        :class:`FlowNotFound` when nothing matches (0.2's handle returned the message)."""
        if not isinstance(message, BaseOrchServMsg):
            raise TypeError(
                f"message must be a BaseOrchServMsg (orch_serv.msg) and not {type(message)}"
            )
        legacy = self.legacy
        target, flow = message.get_target(), message.get_flow()
        if target:
            name = target if target in self.block_names else legacy.default_block
            if name is None:
                raise FlowNotFound(f"unknown target block {target!r}")
            return None, self.block_names[name]
        if flow:
            name = flow if flow in self.flow_names else legacy.default_flow
            if name is None:
                raise FlowNotFound(f"unknown flow {flow!r}")
            return self.flow_names[name], None
        raise FlowNotFound("the message names neither a flow nor a target")

    async def start(self, client: Any, message: BaseOrchServMsg[Any, Any], **options: Any) -> str:
        """Start the run of ``message`` with a :class:`~orch_serv.Client` (or ``Running``);
        returns the run id. ``options`` go to ``client.start`` (``key``, ``deadline``...)."""
        flow, target = self.route(message)
        run_id: str = await client.start(flow, wire.dump(message), target=target, **options)
        return run_id


def result_message(record: Any) -> BaseOrchServMsg[Any, Any] | None:
    """The 0.2 message a finished run's last step returned (None without one)."""
    body = getattr(record, "result", None)
    return wire.load(body) if wire.is_wrapped(body) else None


__all__ = ["SERVICE", "Bridge", "result_message", "safe_name"]
