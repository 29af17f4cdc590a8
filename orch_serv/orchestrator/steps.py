"""Building the messages of a run and calling the hooks of its steps."""

from __future__ import annotations

import inspect
from typing import Any

from orch_serv.constants import MessageKind
from orch_serv.flow.flow import CompiledStep
from orch_serv.flow.hooks import Hook
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages.envelope import Envelope, command_message_id


def build_command(
    spec: FlowSpec,
    step: CompiledStep,
    *,
    run_id: str,
    attempt: int,
    body: Any,
    source: str | None,
    reply_to: str,
    traceparent: str | None = None,
) -> Envelope[Any]:
    """The command for (run, step, attempt), with its deterministic message id."""
    s = step.spec
    return Envelope[Any](
        kind=MessageKind.COMMAND,
        message_id=command_message_id(run_id, s.index, attempt),
        run_id=run_id,
        flow=spec.name if spec.kind == "flow" else None,
        target=spec.name if spec.kind == "block" else None,
        flow_version=spec.version,
        step=s.index,
        step_name=s.name,
        attempt=attempt,
        service=s.service,
        command=s.command,
        source=source,
        reply_to=reply_to,
        traceparent=traceparent,
        body=body,
    )


async def call_hook(hook: Hook | None, message: Envelope[Any]) -> Envelope[Any] | None:
    """Run a sync or async hook on a copy of ``message``; returns what the hook returned."""
    if hook is None:
        return message
    result = hook(message.model_copy(deep=True))
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, Envelope):
        raise TypeError(
            f"hook {hook!r} must return the message or None, not {type(result).__name__}"
        )
    return result
