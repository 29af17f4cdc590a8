"""Retry policies and timeouts of steps (block level, flow level, settings defaults)."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator


class RetryPolicy(BaseModel):
    """How often and how late a failed step is tried again.

    The delay before attempt ``n + 1`` is ``initial_delay * backoff ** (n - 1)``, capped at
    ``max_delay``, then spread by ``jitter`` (a fraction: 0.1 means +-10 %). Errors whose
    ``type`` is in ``non_retryable``, or that say ``retryable: false``, are never retried.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(1, ge=1, le=1000, description="Attempts in all, the first included.")
    initial_delay: float = Field(1.0, ge=0, description="Seconds before the second attempt.")
    backoff: float = Field(2.0, ge=1, description="Factor applied to the delay per attempt.")
    max_delay: float = Field(300.0, ge=0, description="Upper bound of one delay, in seconds.")
    jitter: float = Field(0.0, ge=0, le=1, description="Random spread of each delay (fraction).")
    non_retryable: frozenset[str] = Field(
        frozenset(), description="Error types that fail the step at once."
    )

    @field_serializer("non_retryable")
    def _sorted(self, value: frozenset[str]) -> list[str]:
        return sorted(value)  # stable JSON, so that flow versions are stable

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based) before the next one."""
        base = min(self.initial_delay * self.backoff ** (attempt - 1), self.max_delay)
        if self.jitter and base:
            spread = (rng or random).uniform(-self.jitter, self.jitter)
            base = max(0.0, base * (1 + spread))
        return base

    def allows(self, attempt: int, error_type: str, retryable: bool) -> bool:
        """Whether a step that failed on ``attempt`` with this error may be tried again."""
        return retryable and attempt < self.max_attempts and error_type not in self.non_retryable


class Timeouts(BaseModel):
    """The four clocks of a step, in seconds; None means no limit.

    - ``dispatch``: from sending the command to a service picking it up;
    - ``heartbeat``: longest silence of a running handler (``ctx.heartbeat()``);
    - ``execution``: from pickup to the reply, per attempt;
    - ``total``: across every attempt of the step, back-off included.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dispatch: float | None = Field(None, gt=0)
    heartbeat: float | None = Field(None, gt=0)
    execution: float | None = Field(None, gt=0)
    total: float | None = Field(None, gt=0)

    def over(self, fallback: Timeouts | None) -> Timeouts:
        """These limits, each falling back to ``fallback``'s where unset."""
        if fallback is None:
            return self
        return Timeouts(
            dispatch=self.dispatch if self.dispatch is not None else fallback.dispatch,
            heartbeat=self.heartbeat if self.heartbeat is not None else fallback.heartbeat,
            execution=self.execution if self.execution is not None else fallback.execution,
            total=self.total if self.total is not None else fallback.total,
        )

    @property
    def needs_start_notice(self) -> bool:
        """A service must report when it picks the command up (dispatch, heartbeat and
        execution clocks all hinge on that moment)."""
        return any(v is not None for v in (self.dispatch, self.heartbeat, self.execution))

    @model_validator(mode="after")
    def _sane(self) -> Timeouts:
        if self.heartbeat and self.execution and self.heartbeat > self.execution:
            raise ValueError("heartbeat timeout longer than the execution timeout never fires")
        return self
