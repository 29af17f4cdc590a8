"""Timer members: ``{run_id}|{kind}|{lane}|{step}|{attempt}`` in one sorted set, due ms as score."""

from __future__ import annotations

from dataclasses import dataclass

from orch_serv.constants import Lane, TimerKind


@dataclass(frozen=True, slots=True)
class TimerId:
    """What a timer is for; its string form is the member of the timer set."""

    run_id: str
    kind: TimerKind
    lane: Lane = Lane.RUN
    step: int = 0
    attempt: int = 0

    def __str__(self) -> str:
        return f"{self.run_id}|{self.kind.value}|{self.lane.value}|{self.step}|{self.attempt}"

    @staticmethod
    def middle(kind: TimerKind, lane: Lane = Lane.RUN) -> str:
        """What a member of ``kind`` and ``lane`` has between its run id and
        ``{step}|{attempt}`` (``|wait|run|``): how a Lua script builds one."""
        return f"|{kind.value}|{lane.value}|"

    @classmethod
    def parse(cls, member: str) -> TimerId:
        """The inverse of ``str()``; raises ValueError for a foreign member."""
        run_id, kind, lane, step, attempt = member.split("|")
        return cls(run_id, TimerKind(kind), Lane(lane), int(step), int(attempt))


def due_ms(seconds: float) -> int:
    """A timer score: whole milliseconds since the epoch."""
    return int(seconds * 1000)
