"""Message ids come from one module and follow the documented scheme (docs/protocol.md,
"Message ids"): the ids services rely on for idempotency."""

from __future__ import annotations

import re
from typing import Any

from orch_serv.constants import Lane, MessageKind
from orch_serv.flow.policy import Timeouts
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.messages import ids
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.core import Planner
from orch_serv.orchestrator.core.dispatch import resume_message, start_message

SPEC = FlowSpec(
    name="f", steps=(StepSpec(index=0, name="a", block="a", service="s", command="a"),)
).with_version()


def test_the_documented_formats() -> None:
    command = ids.command_id("R", 2, 3)
    assert command == "R:2:3"
    assert ids.command_id("R", 2, 3, Lane.COMPENSATE) == "R:c2:3"
    assert ids.reply_id(command) == "R:2:3:reply"
    assert ids.heartbeat_id(command, 1) == "R:2:3:beat:1"
    assert ids.status_id(command, 2) == "R:2:3:status:2"
    assert ids.start_id("R") == "R:start"
    assert ids.resume_id("R", Lane.RUN, 2, 4) == "R:resume:run:2:4"
    assert ids.cancel_notice_id("R") == "R:cancel"
    assert ids.cancel_notice_id("R", command) == "R:2:3:cancel"
    assert ids.once_token(command) == command
    assert ids.once_token(command, "charge") == "R:2:3:charge"
    assert (ids.cancel_cause("R"), ids.retry_cause("R", 2), ids.lost_cause("R")) == (
        "R:cancel",
        "R:retry:2",
        "R:lost",
    )
    assert re.fullmatch(r"[0-9A-Za-z]{22}", ids.new_run_id())
    assert ids.new_run_id() != ids.new_run_id()


def test_messages_carry_the_ids_of_the_scheme() -> None:
    planned = Planner(Timeouts(), "orchestrator").dispatch(
        SPEC, SPEC.steps[0], lane=Lane.RUN, run_id="R", attempt=2, body={}, now=1.0
    )
    command: Envelope[Any] = planned.command
    assert command.message_id == ids.command_id("R", 0, 2)
    reply = command.answer(MessageKind.REPLY, ids.reply_id(command.message_id), service="s")
    assert reply.message_id == "R:0:2:reply" and reply.attempt == 2
    assert start_message("R", "flow", "f", SPEC.version, {}).message_id == ids.start_id("R")
    resume = resume_message("R", "flow", "f", SPEC.version, step=0, attempt=2, lane=Lane.RUN)
    assert resume.message_id == ids.resume_id("R", Lane.RUN, 0, 2)


def test_every_id_is_built_in_the_ids_module() -> None:
    """No other module of the package spells an id suffix."""
    from pathlib import Path

    import orch_serv

    root = Path(orch_serv.__file__).parent
    pattern = re.compile(r"\}:(start|reply|resume|cancel|retry|lost|beat|status)\b|\":reply\"")
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "ids.py" and pattern.search(path.read_text())
    ]
    assert offenders == []
