"""orch_serv 0.2's orchestrators, in process: ``SyncOrchestrator`` and ``AsyncOrchestrator``.

``handle(message)`` runs the message's target block (its ``process`` only, as in 0.2) or
hands it to its flow (one block per call, chosen by the message's source). Unknown names fall
back to the defaults; errors are logged and the message returned; success returns None unless
``is_force_return``. The same object can be served distributed, unchanged, by
``orch-serv orchestrator MODULE:obj`` (:mod:`orch_serv.legacy02.bridge`).

Fixed against 0.2: flows and blocks live in per-instance dicts (0.2 shared class-level dicts).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from orch_serv.exc import NoDateException, NotFoundDefaultError
from orch_serv.legacy02.blocks import AsyncBlock, SyncBlock
from orch_serv.legacy02.flows import AsyncFlow, SyncFlow
from orch_serv.legacy02.loading import collect
from orch_serv.legacy02.logs import DEFAULT_LOGGER
from orch_serv.legacy02.message import BaseOrchServMsg


class SyncOrchestrator:
    """Flows and target blocks of synchronous 0.2 programs."""

    flows: ClassVar[Any] = None
    blocks: ClassVar[Any] = None
    _flow_mode: ClassVar[type] = SyncFlow
    _block_mode: ClassVar[type] = SyncBlock

    def __init__(
        self,
        flows: Any = None,
        blocks: Any = None,
        logger: logging.Logger | None = None,
        flows_to_ignore: list[str] | None = None,
        blocks_to_ignore: list[str] | None = None,
        default_flow: str | None = None,
        default_block: str | None = None,
    ) -> None:
        self.logger = logger or DEFAULT_LOGGER
        flows = flows if flows is not None else type(self).flows
        blocks = blocks if blocks is not None else type(self).blocks
        if flows is None and blocks is None:
            raise NoDateException()
        owner = type(self).__name__
        self._flows: dict[str, Any] = {}
        self._targets: dict[str, Any] = {}
        if flows is not None:
            self._flows = collect(
                flows, "flow", ignore=flows_to_ignore, mode=self._flow_mode, owner=owner
            )
        if blocks is not None:
            self._targets = collect(
                blocks, "block", ignore=blocks_to_ignore, mode=self._block_mode, owner=owner
            )
        for value, known, kind in (
            (default_flow, self._flows, "flows"),
            (default_block, self._targets, "blocks"),
        ):
            if value is not None and value not in known:
                raise NotFoundDefaultError(value, kind, known)
        self.default_flow = default_flow
        self.default_block = default_block

    def get_list_flows(self) -> list[str]:
        """Flow names in the order they were given (alphabetical for a module)."""
        return list(self._flows)

    def get_list_blocks(self) -> list[str]:
        """Target block names in the order they were given."""
        return list(self._targets)

    def _get(self, store: dict[str, Any], name: str | None, default: str | None) -> Any:
        key = name if name in store else default
        if key is None or key not in store:
            return None
        item = store[key]
        if isinstance(item, type):
            item = item(logger=self.logger)
            store[key] = item
        return item

    def get_flow(self, name: str | None) -> Any:
        """The flow instance for ``name`` (the default for an unknown name), or None."""
        return self._get(self._flows, name, self.default_flow)

    def get_block(self, name: str | None) -> Any:
        """The target block instance for ``name`` (the default for an unknown name), or None."""
        return self._get(self._targets, name, self.default_block)

    def _route(self, message: Any) -> tuple[str, Any] | None:
        if not isinstance(message, BaseOrchServMsg):
            raise TypeError(
                f"message must be a BaseOrchServMsg (orch_serv.msg) and not {type(message)}"
            )
        flow = message.get_flow()
        target = message.get_target()
        if target:
            block = self.get_block(target)
            if block is None:
                self.logger.warning("Not found target block %r for message %r", target, message)
            return None if block is None else ("target", block)
        if flow:
            found = self.get_flow(flow)
            if found is None:
                self.logger.warning("Not found flow %r for message %r", flow, message)
            return None if found is None else ("flow", found)
        self.logger.warning("Message %r names neither a flow nor a target", message)
        return None

    def handle(self, message: Any, is_force_return: bool = False) -> Any:
        """Process ``message``: None on success (the message with ``is_force_return``); the
        message when nothing could process it or processing raised (logged)."""
        route = self._route(message)
        if route is None:
            return message
        kind, obj = route
        try:
            if kind == "target":
                obj.process(message)
            else:
                obj.to_go_with_the_flow(message)
        except Exception:
            self.logger.warning("Error while processing message %r", message, exc_info=True)
            return message
        return message if is_force_return else None


class AsyncOrchestrator(SyncOrchestrator):
    """Flows and target blocks of asynchronous 0.2 programs; ``await handle(message)``."""

    _flow_mode = AsyncFlow
    _block_mode = AsyncBlock

    async def handle(self, message: Any, is_force_return: bool = False) -> Any:
        """Process ``message``: None on success (the message with ``is_force_return``); the
        message when nothing could process it or processing raised (logged)."""
        route = self._route(message)
        if route is None:
            return message
        kind, obj = route
        try:
            if kind == "target":
                await obj.process(message)
            else:
                await obj.to_go_with_the_flow(message)
        except Exception:
            self.logger.warning("Error while processing message %r", message, exc_info=True)
            return message
        return message if is_force_return else None


__all__ = ["AsyncOrchestrator", "SyncOrchestrator"]
