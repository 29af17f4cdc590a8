"""What every 0.2 command handler has: a logger, the service it belongs to, and the swap
scope (data handlers of one service share between commands).

Fixed against 0.2: the swap scope is a dictionary of the service (0.2 used ``setattr`` on the
service, so a key such as ``logger`` clobbered the service's own attributes), and each service
instance gets handlers of its own (0.2 shared the class-level handler instances between every
instance of a service class, so the first instance's swap scope pointed at the last one).
"""

from __future__ import annotations

import logging
from typing import Any

from orch_serv.legacy02.logs import DEFAULT_LOGGER


class LegacyHandler:
    """Base of the 0.2 strategy classes (``CommandHandlerProcessStrategy`` & co.)."""

    _logger: logging.Logger = DEFAULT_LOGGER
    _service_instance: Any = None
    #: Log swap-scope operations at debug level.
    _is_logged: bool = False

    @property
    def logger(self) -> logging.Logger:
        """The logger the service gave this handler."""
        return self._logger

    def set_logger(self, val: Any) -> None:
        """Use ``val`` (a ``logging.Logger``; a falsy value is ignored)."""
        if not val:
            return
        if not isinstance(val, logging.Logger):
            raise TypeError(f"Type must be logger but not {val}")
        self._logger = val

    def set_service_instance(self, service: Any) -> None:
        """Attach the handler to ``service`` (a ``Service``): its swap scope is used."""
        from orch_serv.service.definition import Service

        if not isinstance(service, Service):
            raise TypeError(f"Type must be Service but not {type(service)}")
        self._service_instance = service

    def _scope(self) -> dict[str, Any] | None:
        service = self._service_instance
        return None if service is None else service.swap_scope

    def set_to_swap_scope(self, key: str, data: Any) -> bool:
        """Store ``data`` under ``key`` for the other commands of the service."""
        scope = self._scope()
        if scope is None:
            if self._is_logged:
                self.logger.warning("No service attached: %r not stored", key)
            return False
        scope[key] = data
        return True

    def get_from_swap_scope(self, key: str) -> Any:
        """The data stored under ``key``, or None."""
        scope = self._scope()
        return None if scope is None else scope.get(key)

    def del_from_swap_scope(self, key: str) -> bool:
        """Remove ``key``; False when it was not there or no service is attached."""
        scope = self._scope()
        if scope is None or key not in scope:
            if self._is_logged:
                self.logger.warning("Key %r not in the swap scope", key)
            return False
        del scope[key]
        return True


__all__ = ["LegacyHandler"]
