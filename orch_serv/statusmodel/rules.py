"""The ready-to-set and finish rules of a status model, as pure functions (section 2.4 of the
seed behaviours, in its order). The store checks the same rules inside one Lua call
(``store/lua/set_status.lua``) from the :class:`StatusRule` of the status being set; these
functions are the reference the tests hold the script to."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from orch_serv.statusmodel.codes import Code, FinishReason
from orch_serv.statusmodel.model import StatusModel, StatusType


@dataclass(frozen=True, slots=True)
class StatusRule:
    """What the rules need to know about one status of a model (``known`` False: the model
    has no such status)."""

    name: str
    known: bool
    type: StatusType | None = None
    #: MANDATORY predecessors: every one must be set.
    mandatory_before: tuple[str, ...] = ()
    #: Predecessors of any other type: one must be set when there is no mandatory one.
    other_before: tuple[str, ...] = ()
    #: Successors, for an OPTIONAL status only (it cannot be set once one of them is).
    after: tuple[str, ...] = ()
    #: Every MANDATORY status of the model (the instance finishes when all are set).
    mandatory_all: tuple[str, ...] = ()

    @classmethod
    def of(cls, model: StatusModel | None, name: str) -> StatusRule:
        """The rule of status ``name`` in ``model`` (unknown without a model)."""
        status = model.status(name) if model is not None else None
        if model is None or status is None:
            return cls(name, False)
        types = {s.name: s.type for s in model.statuses}
        mandatory = tuple(p for p in status.after if types[p] is StatusType.MANDATORY)
        others = tuple(p for p in status.after if types[p] is not StatusType.MANDATORY)
        successors = model.successors(name) if status.type is StatusType.OPTIONAL else ()
        return cls(name, True, status.type, mandatory, others, successors, model.mandatory)


def ready(rule: StatusRule, reached: Set[str], finished: str | None = None) -> Code:
    """Whether the status of ``rule`` may be set now (rules 3 to 7): SUCCESS or the refusal.
    ``reached``: the statuses already set; ``finished``: why the instance is finished, if it
    is (rules 1 and 2, finding the instance and its timeout, are the store's)."""
    if finished:
        return Code.INSTANCE_IS_FINISHED
    if not rule.known:
        return Code.STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT
    if any(p not in reached for p in rule.mandatory_before):
        return Code.NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET
    if (
        not rule.mandatory_before
        and rule.other_before
        and not any(p in reached for p in rule.other_before)
    ):
        return Code.NO_ONE_PREVIOS_OPTIONAL_STATUSES_ARE_SET
    if rule.type is StatusType.OPTIONAL and any(s in reached for s in rule.after):
        return Code.AT_LEAST_ONE_NEXT_STATUS_IS_SET
    if rule.name in reached:
        return Code.STATUS_IS_ALREADY_SET
    return Code.SUCCESS


def finish_reason(rule: StatusRule, reached: Set[str]) -> FinishReason | None:
    """Why the instance finishes once the status of ``rule`` is set (``reached`` includes
    it): all MANDATORY statuses set (which wins, as in Statusek), a STOP status, or None.
    A model without MANDATORY statuses therefore finishes on the first status set."""
    if all(m in reached for m in rule.mandatory_all):
        return FinishReason.ALL_MANDATORY_STATUSES_ARE_SET
    if rule.type is StatusType.STOP:
        return FinishReason.STOP_STATUS_IS_SET
    return None


def timed_out(created_at: float, timeout: float | None, now: float) -> bool:
    """Statusek's lazy check: ``now - created_at >= timeout`` (a timeout of 0 ends the
    instance at its first access; None never times out)."""
    return timeout is not None and now - created_at >= timeout


__all__ = ["StatusRule", "finish_reason", "ready", "timed_out"]
