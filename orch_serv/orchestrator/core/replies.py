"""Replies: a service answered one attempt of a step; advance, retry, give up or compensate.
Pure.

The shell runs the post hook of the replying step and the pre hook of the next one (on the
command :meth:`Replies.next_dispatch` builds) and hands over what they made of the messages
(:class:`~orch_serv.orchestrator.core.hooks.ReplyHooks`); a definition without hooks needs
no such round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orch_serv.constants import EventKind, Lane, Phase, RunState
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.core.decision import Commit, Decision, Reject
from orch_serv.orchestrator.core.dispatch import Dispatch, GiveUp, lane_state
from orch_serv.orchestrator.core.events import (
    hook_error,
    step_event,
    stopped_event,
)
from orch_serv.orchestrator.core.hooks import Hooked, ReplyHooks
from orch_serv.orchestrator.core.outcomes import Decider, finish
from orch_serv.store.base import Event, Position, Transition
from orch_serv.store.shape import RunFields


class Replies(Decider):
    """Decisions for REPLY messages."""

    # -- replies -----------------------------------------------------------------------------
    def next_dispatch(
        self, spec: FlowSpec, reply: Envelope[Any], forwarded: Envelope[Any], now: float
    ) -> Dispatch | None:
        """The next step's command built from what the post hook forwarded (None after the
        last step)."""
        following = spec.step(reply.step + 1)
        if following is None:
            return None
        return self.planner.dispatch(
            spec,
            following,
            lane=Lane.RUN,
            run_id=reply.run_id,
            attempt=1,
            body=forwarded.body,
            now=now,
            source=spec.steps[reply.step].name,
            traceparent=reply.traceparent,
        )

    def on_reply(
        self,
        spec: FlowSpec,
        reply: Envelope[Any],
        now: float,
        *,
        redelivered: bool,
        hooks: ReplyHooks | None = None,
        outputs: Mapping[int, Any] | None = None,
    ) -> Decision:
        """A service answered one attempt of a step: advance, retry, give up or compensate.
        ``outputs``: the run's stored step outputs, once :class:`NeedRun` asked for them."""
        step = spec.step(reply.step)
        if step is None:
            return Reject(f"step {reply.step} is past the end of {spec.name!r}")
        lane = reply.lane
        expect = Position(lane_state(lane), step.index, reply.attempt)
        ignored = step_event(
            EventKind.REPLY_IGNORED,
            step,
            reply.attempt,
            now,
            error=reply.error,
            component=reply.service,
            message_id=reply.message_id,
        )
        if reply.error is not None:
            kind = EventKind.STEP_FAILED if lane is Lane.RUN else EventKind.COMPENSATION_FAILED
            failed = step_event(
                kind,
                step,
                reply.attempt,
                now,
                error=reply.error,
                component=reply.service,
                duration_ms=reply.duration_ms,
                message_id=reply.message_id,
            )
            return self.outcomes.attempt_failed(
                spec,
                reply.run_id,
                lane,
                step,
                reply.attempt,
                reply.error,
                now,
                cause=reply.message_id,
                expect=expect,
                failed=failed,
                outputs=outputs,
                ignored=ignored,
                republish=redelivered,
            )
        if lane is Lane.COMPENSATE:
            return self._compensated(spec, reply, step, now, expect, ignored, redelivered, outputs)
        return self._completed(spec, reply, step, now, expect, ignored, redelivered, hooks, outputs)

    def _completed(
        self,
        spec: FlowSpec,
        reply: Envelope[Any],
        step: StepSpec,
        now: float,
        expect: Position,
        ignored: Event,
        redelivered: bool,
        hooks: ReplyHooks | None,
        outputs: Mapping[int, Any] | None,
    ) -> Decision:
        completed = step_event(
            EventKind.STEP_COMPLETED,
            step,
            reply.attempt,
            now,
            component=reply.service,
            duration_ms=reply.duration_ms,
        )
        kept = {step.index: reply.body} if step.compensate else {}  # for its compensation
        following = spec.step(step.index + 1)
        if hooks is None:  # a definition without hooks
            planned = self.next_dispatch(spec, reply, reply, now)
            pre = None if planned is None else Hooked(planned.command)
            hooks = ReplyHooks(Hooked(reply), planned, pre)
        forwarded = hooks.post.message or reply
        failure = hooks.post.error
        culprit, in_pre = step, False
        if failure is None and following is not None and hooks.pre is not None:
            failure, culprit, in_pre = hooks.pre.error, following, True
        if failure is not None:
            fields = RunFields(outputs=kept)
            if in_pre:  # the run stops before the next step: a retry starts with its pre hook
                fields = RunFields(step_input=forwarded.body, hook_pending=True, outputs=kept)
            return self.outcomes.give_up(
                spec,
                reply.run_id,
                step,
                hook_error(failure, culprit),
                now,
                reply.message_id,
                expect,
                [completed],
                GiveUp(RunState.FAILED, spec.compensation_before(step.index + 1)),
                outputs=outputs,
                fields=fields,
                ignored=ignored,
                republish=redelivered,
                at_step=culprit if in_pre else None,
            )
        command = hooks.pre.message if hooks.pre is not None else None
        if following is None or command is None or hooks.planned is None:
            events = [completed]
            if following is not None:
                events.append(stopped_event(following, now))
            return finish(
                reply.run_id,
                expect,
                RunState.SUCCEEDED,
                now,
                reply.message_id,
                events=events,
                result=forwarded.body,
                fields=RunFields(outputs=kept),
                ignored=ignored,
            )
        change = Transition(
            run_id=reply.run_id,
            expect=expect,
            new=Position(RunState.RUNNING, step.index + 1, 1, Phase.DISPATCHED),
            cause=reply.message_id,
            now=now,
            step_name=command.step_name,
            fields=RunFields(step_input=command.body, outputs=kept),
            events=[completed, hooks.planned.event],
            ignored=ignored,
            clear_timers=True,
            timers_add=hooks.planned.timers,
        )
        return Commit(change, command, republish=redelivered)

    def _compensated(
        self,
        spec: FlowSpec,
        reply: Envelope[Any],
        step: StepSpec,
        now: float,
        expect: Position,
        ignored: Event,
        redelivered: bool,
        outputs: Mapping[int, Any] | None,
    ) -> Decision:
        done = step_event(
            EventKind.COMPENSATION_COMPLETED,
            step,
            reply.attempt,
            now,
            component=reply.service,
            duration_ms=reply.duration_ms,
            message_id=reply.message_id,
        )
        following = spec.compensation_before(step.index)
        if following is None:
            return finish(
                reply.run_id,
                expect,
                RunState.COMPENSATED,
                now,
                reply.message_id,
                events=[done],
                ignored=ignored,
            )
        return self.outcomes.compensate(
            spec,
            reply.run_id,
            following,
            now,
            reply.message_id,
            expect,
            [done],
            outputs=outputs,
            ignored=ignored,
            republish=redelivered,
            traceparent=reply.traceparent,
        )


__all__ = ["Replies"]
