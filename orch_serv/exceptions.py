"""One exception tree for orch_serv, rooted at :class:`OrchServError`.

The names of orch_serv 0.2 are kept (``FlowBlockException``, ``NotUniqueBlockInFlowError``,
``NotUniqueCommandError`` ...) so code written against it keeps catching what it caught.
Errors of aio-pika and redis-py are translated once, at the transport and store boundary,
into :class:`TransportError` and :class:`StoreError`.
"""

from __future__ import annotations


class OrchServError(Exception):
    """Root of every error raised by orch_serv. The text is also kept in ``.message``."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


# -- messages ---------------------------------------------------------------------------------
class MsgException(OrchServError):
    """A message could not be built, encoded or decoded."""


class DecodeError(MsgException):
    """Bytes on the wire are not a valid orch_serv envelope."""


class MessageTooLarge(MsgException):
    """A message is larger than ``Settings.max_message_bytes``."""


# -- definitions ------------------------------------------------------------------------------
class OrchestratorException(OrchServError):
    """Errors in flow, block and orchestrator definitions."""


class FlowException(OrchestratorException):
    """A flow is badly defined or cannot be found."""


class FlowNotFound(FlowException):
    """No flow (or flow version) with that name is registered."""


class BlockException(OrchestratorException, TypeError):
    """A block is badly defined."""


class FlowBlockException(OrchestratorException, TypeError):
    """A ``FlowBlock`` was given something that is not a block, or a bad hook."""


class FlowBuilderException(OrchestratorException, TypeError):
    """A ``FlowBuilder`` was given something that is not a ``FlowBlock``."""


class EmptyFlowError(FlowException):
    """A flow has no steps."""


class FlowNotImplemented(FlowException, NotImplementedError):
    """A flow class lacks ``name_flow`` or ``steps_flow``."""


class NotUniqueBlockInFlowError(OrchestratorException):
    """Two different blocks of one flow share a ``name_block``."""


class UniqueNameException(OrchestratorException):
    """Two flows (or blocks) registered with one orchestrator share a name."""


class NoDateException(OrchestratorException):
    """An orchestrator was given no flows and no blocks (orch_serv's name, kept)."""


class NotFoundDefaultError(OrchestratorException):
    """A ``default_flow``/``default_block`` names nothing that is registered."""


class WrongTypeException(OrchestratorException, TypeError):
    """A definition was given a value of the wrong type."""


# -- service ----------------------------------------------------------------------------------
class ServiceException(OrchServError):
    """Errors in service and command handler definitions."""


class ServiceBlockException(ServiceException, TypeError):
    """A ``ServiceBlock`` was given something that is not a handler."""


class EmptyCommandsException(ServiceException):
    """A service has no commands."""


class NotUniqueCommandError(ServiceException):
    """Two handlers of one service declare the same command."""


class IncorrectDefaultCommand(ServiceException):
    """A ``default_command`` names no command of the service."""


class DoublePostProcessFunctionDeclaredError(ServiceException):
    """A default post-processor was given twice."""


class HandlerError(ServiceException):
    """Raised by a handler to fail its step with a structured, typed error.

    ``retryable=False`` tells the orchestrator that retrying will not help.
    """

    def __init__(self, message: str, *, type: str | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.type = type or self.__class__.__name__
        self.retryable = retryable


class NonRetryableError(HandlerError):
    """A handler error that must never be retried."""

    def __init__(self, message: str, *, type: str | None = None) -> None:
        super().__init__(message, type=type, retryable=False)


class RetryAfter(HandlerError):
    """Raised by a handler to ask for another attempt after ``delay`` seconds (the block's
    retry policy still bounds the number of attempts)."""

    def __init__(
        self, delay: float, message: str = "retry requested", *, type: str | None = None
    ) -> None:
        super().__init__(message, type=type or "RetryAfter", retryable=True)
        self.delay = delay


# -- runtime ----------------------------------------------------------------------------------
class RunNotFound(OrchServError):
    """No run with that id (or key) exists in the store."""


class InvalidRunState(OrchServError):
    """The run is not in a state that allows the operation (e.g. retry of a running run)."""


class IdempotencyConflict(OrchServError):
    """A start reused an idempotency key that already names a run of another flow (or
    block). ``key``, ``run_id`` and ``flow`` (``kind`` ``flow`` or ``block``) describe the
    run that holds the key; nothing new was started."""

    def __init__(self, message: str, *, key: str, run_id: str, flow: str, kind: str) -> None:
        super().__init__(message)
        self.key = key
        self.run_id = run_id
        self.flow = flow
        self.kind = kind


class DeadLetterNotFound(OrchServError):
    """No dead letter with that id is in the dead-letter queue."""


class TransportError(OrchServError):
    """The message broker failed or refused an operation."""


class PublishError(TransportError):
    """A publish was not confirmed (nacked, unroutable or connection lost)."""


class Unroutable(PublishError):
    """The broker returned a publish: no queue is bound to its routing key. Publishing the
    same message again cannot succeed until someone declares such a queue."""


class StoreError(OrchServError):
    """The run store failed or refused an operation."""


class ConfigurationError(OrchServError):
    """Settings or an import path are wrong."""


class NamespaceConflict(ConfigurationError):
    """Another application's orchestrators serve the namespace this one was told to use."""
