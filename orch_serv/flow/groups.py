"""Steps that run members in parallel and join them: static branches and a map over a list.

::

    class Publish(Flow):
        name_flow = "publish"
        steps_flow = FlowBuilder(
            FlowBlock(Validate),
            FlowBlock(Parallel({"csv": [FlowBlock(ToCsv)], "json": [FlowBlock(ToJson),
                                                                   FlowBlock(Gzip)]},
                               join="all")),
            FlowBlock(Map(FlowBlock(Transform), max_concurrency=50, join="collect")),
            FlowBlock(Announce),
        )

A group step sends no command: the orchestrators keep it, like a wait step. Each member (a
branch, or the block or chain run for one element of the list the step is given) is a CHILD
RUN of its own flow (``<flow>~<step>~<branch>``, registered with the parent flow and part of
its version), so it has retries, timeouts, compensation, cancellation and a history of its
own. The join policy decides when the group is over (docs/groups.md):

``all``
    every member must succeed: the group waits for every member to end (none is cancelled),
    then succeeds, or fails listing every member that failed.
``fail_fast``
    every member must succeed, but the first member to fail for good (its retries spent, timed
    out or cancelled) fails the group at once, and the members still running are cancelled.
``any``
    the first member to succeed wins (the others are cancelled); fails when every one failed.
``n_of_m``
    ``n`` successes win (the others are cancelled); fails as soon as ``n`` can no longer be
    reached.
``collect``
    waits for every member and always succeeds, with each member's result or error.

The join result is the next step's input: a mapping by branch name for ``Parallel``, a list in
element order for ``Map`` (``None`` where a member did not succeed; ``collect`` gives each
member's ``{"state", "result"}`` or ``{"state", "error"}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from orch_serv.exceptions import FlowBlockException
from orch_serv.flow.block import Block
from orch_serv.flow.policy import Timeouts

if TYPE_CHECKING:
    from orch_serv.flow.flow import FlowBlock

#: The service name group steps carry (no process consumes it: the orchestrator keeps them).
GROUPS_SERVICE: Final = "orch_serv.groups"
#: What separates a parent flow's name, the group step's name and a branch's name in the
#: name of a branch's flow (a character no user name has).
BRANCH_MARK: Final = "~"
#: The branch name of a map's member flow.
MAP_BRANCH: Final = "each"
#: Default seconds between two checks of a group (a safety net: a member that ends makes the
#: check due at once).
DEFAULT_GROUP_POLL: Final = 10.0
#: The most elements a map takes (its members are runs: a larger list is refused).
MAX_MEMBERS: Final = 100_000

Join = Literal["all", "any", "n_of_m", "fail_fast", "collect"]
JOINS: Final = get_args(Join)
_Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]


def group_problem(
    kind: str, branches: Sequence[str], join: str, n: int | None, max_concurrency: int | None
) -> str | None:
    """What is wrong with a group's shape, in words (None: nothing)."""
    if join not in JOINS:
        return f"join must be one of {', '.join(JOINS)}, not {join!r}"
    if not branches:
        return "a parallel group needs at least one branch"
    if len(set(branches)) != len(branches):
        return "branch names must be unique"
    if join == "n_of_m":
        if n is None or isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return f"join 'n_of_m' needs n, a whole number >= 1, not {n!r}"
        if kind == "parallel" and n > len(branches):
            return f"n_of_m with n={n} cannot be met by {len(branches)} branch(es)"
    elif n is not None:
        return f"n is only for join 'n_of_m', not {join!r}"
    if max_concurrency is not None:
        if kind != "map":
            return "max_concurrency is only for a map"
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            return f"max_concurrency must be a whole number >= 1, not {max_concurrency!r}"
        if max_concurrency < 1:
            return f"max_concurrency must be >= 1, not {max_concurrency}"
    return None


class BranchRef(BaseModel):
    """One branch of a group as stored: its name and the flow (name, version) it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: _Name
    flow: str
    version: str


class GroupSpec(BaseModel):
    """What a group step runs and how it joins (stored in the step's definition, part of its
    version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``parallel``: the static ``branches``; ``map``: the one branch once per element.
    kind: Literal["parallel", "map"]
    branches: tuple[BranchRef, ...] = Field(min_length=1)
    join: Join = "all"
    #: Successes needed with ``join == "n_of_m"``.
    n: int | None = None
    #: A map's most members unfinished at a time (None: all at once).
    max_concurrency: int | None = None
    #: Seconds between two checks of the group (an ending member makes it due at once).
    poll: float = Field(DEFAULT_GROUP_POLL, gt=0, le=3600)

    @model_validator(mode="after")
    def _shape(self) -> GroupSpec:
        problem = group_problem(
            self.kind, [b.name for b in self.branches], self.join, self.n, self.max_concurrency
        )
        if problem is None and self.kind == "map" and len(self.branches) != 1:
            problem = "a map runs exactly one branch"
        if problem is not None:
            raise ValueError(problem)
        return self


def _chain(where: str, value: object) -> tuple[FlowBlock, ...]:
    """A branch given as one ``FlowBlock`` or a sequence of them."""
    from orch_serv.flow.flow import FlowBlock

    items = [value] if isinstance(value, FlowBlock) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        raise FlowBlockException(f"{where} must be a FlowBlock or a non-empty list of FlowBlocks")
    for i, item in enumerate(items):
        if not isinstance(item, FlowBlock):
            raise FlowBlockException(f"{where}[{i}] must be a FlowBlock, not {type(item).__name__}")
    return tuple(items)


class GroupBlock(Block):
    """A block that runs members and joins them (see the module's documentation); made by
    :func:`Parallel` and :func:`Map`."""

    def __init__(
        self,
        name_block: str,
        kind: Literal["parallel", "map"],
        branches: Mapping[str, tuple[FlowBlock, ...]],
        *,
        join: str = "all",
        n: int | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        poll: float = DEFAULT_GROUP_POLL,
    ) -> None:
        problem = group_problem(kind, list(branches), join, n, max_concurrency)
        if problem is not None:
            raise FlowBlockException(f"group {name_block!r}: {problem}")
        if not (isinstance(poll, int | float) and 0 < poll <= 3600):
            raise FlowBlockException(f"group {name_block!r}: poll must be in (0, 3600]")
        super().__init__(
            name_block,
            service=GROUPS_SERVICE,
            command=kind,
            timeouts=None if timeout is None else Timeouts(total=timeout),
        )
        self.kind: Literal["parallel", "map"] = kind
        self.branches = dict(branches)
        self.join = join
        self.n = n
        self.max_concurrency = max_concurrency
        self.poll = float(poll)

    def spec(self, refs: Sequence[BranchRef]) -> GroupSpec:
        """The stored form, given the flows its branches were registered as."""
        return GroupSpec(
            kind=self.kind,
            branches=tuple(refs),
            join=self.join,  # checked by group_problem
            n=self.n,
            max_concurrency=self.max_concurrency,
            poll=self.poll,
        )

    def __repr__(self) -> str:
        return f"GroupBlock({self.name_block!r}, {self.kind}, {list(self.branches)})"


def Parallel(
    branches: Mapping[str, FlowBlock | Sequence[FlowBlock]],
    *,
    join: str = "all",
    n: int | None = None,
    name: str = "parallel",
    timeout: float | None = None,
    poll: float = DEFAULT_GROUP_POLL,
) -> GroupBlock:
    """A step that runs each branch (a chain of ``FlowBlock``) as a member, all at once, on the
    step's input, and joins them by ``join`` into a mapping by branch name."""
    if not isinstance(branches, Mapping) or not branches:
        raise FlowBlockException(
            f"group {name!r}: a parallel group needs a non-empty mapping of branches"
        )
    chains: dict[str, tuple[FlowBlock, ...]] = {}
    for key, chain in branches.items():
        if not isinstance(key, str) or not _valid_name(key):
            raise FlowBlockException(
                f"group {name!r}: branch names are 1-128 letters, digits, '_', '.' or '-', "
                f"not {key!r}"
            )
        chains[key] = _chain(f"group {name!r} branch {key!r}", chain)
    return GroupBlock(name, "parallel", chains, join=join, n=n, timeout=timeout, poll=poll)


def Map(
    block: FlowBlock | Sequence[FlowBlock],
    *,
    max_concurrency: int | None = None,
    join: str = "all",
    n: int | None = None,
    name: str = "map",
    timeout: float | None = None,
    poll: float = DEFAULT_GROUP_POLL,
) -> GroupBlock:
    """A step that runs ``block`` (or a chain) once per element of the list it is given, at
    most ``max_concurrency`` at a time, and joins them by ``join`` into a list in order."""
    chain = _chain(f"map {name!r}", block)
    return GroupBlock(
        name,
        "map",
        {MAP_BRANCH: chain},
        join=join,
        n=n,
        max_concurrency=max_concurrency,
        timeout=timeout,
        poll=poll,
    )


def _valid_name(value: str) -> bool:
    from orch_serv.flow.block import NAME_PATTERN

    return bool(NAME_PATTERN.match(value))


def branch_flow_name(flow: str, step: str, branch: str) -> str:
    """The name a branch's flow is registered under: ``<flow>~<step>~<branch>``."""
    return f"{flow}{BRANCH_MARK}{step}{BRANCH_MARK}{branch}"


def member_id(parent_run: str, step: int, attempt: int, member: int) -> str:
    """The run id of a group member: ``<parent>~<step>.<attempt>.<member>`` (it shares the
    parent's shard: keys are sharded by the part of an id before the first ``~``)."""
    return f"{parent_run}{BRANCH_MARK}{step}.{attempt}.{member}"


def parse_member_id(run_id: str) -> tuple[str, int, int, int] | None:
    """``(parent, step, attempt, member)`` of a member's run id, None for another run."""
    parent, mark, tail = run_id.rpartition(BRANCH_MARK)
    if not mark or not parent:
        return None
    parts = tail.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return parent, int(parts[0]), int(parts[1]), int(parts[2])


__all__ = [
    "BRANCH_MARK",
    "DEFAULT_GROUP_POLL",
    "GROUPS_SERVICE",
    "JOINS",
    "MAP_BRANCH",
    "MAX_MEMBERS",
    "BranchRef",
    "GroupBlock",
    "GroupSpec",
    "Join",
    "Map",
    "Parallel",
    "branch_flow_name",
    "group_problem",
    "member_id",
    "parse_member_id",
]
