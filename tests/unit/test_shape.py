"""The Lua scripts and Python share one definition of the stored shape: the scripts spell no
state, phase, outcome, event code, timer member or key name of their own, and the generated
definitions they get evaluate to what Python says."""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable

import fakeredis
import pytest

from orch_serv.constants import EventKind, Phase, RunState
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import KIND_CODES, STORAGE_KEYS, Outcome
from orch_serv.store.keys import Keys
from orch_serv.store.shape import (
    TRANSITION_ARGS,
    UNSET,
    BeatOutcome,
    Field,
    RunFields,
    ScriptArgs,
    lua_prelude,
)

SCRIPTS = sorted(
    (
        p
        for p in resources.files("orch_serv.store").joinpath("lua").iterdir()
        if p.name.endswith(".lua")
    ),
    key=lambda p: p.name,
)
FIELDS = {v for k, v in vars(Field).items() if k.isupper() and isinstance(v, str)}


def _literals(script: str) -> set[str]:
    code = "\n".join(line.split("--")[0] for line in script.splitlines())
    return set(re.findall(r"'([^']*)'", code)) | set(re.findall(r'"([^"]*)"', code))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_spell_no_shared_constant(script: Traversable) -> None:
    text = script.read_text()
    literals = _literals(text)
    shared = (
        {s.value for s in RunState}
        | {p.value for p in Phase}
        | {o.value for o in Outcome}
        | set(KIND_CODES.values())
        | set(STORAGE_KEYS.values())
        | {"BEAT"}
    )
    assert not literals & shared, literals & shared
    for fragment in (":idx:", ":key:", ":run:", ":finished", "|deadline|"):
        assert fragment not in text
    words = {w for w in literals if re.fullmatch(r"[a-z_]+", w)}
    reasons = {"stale_step", "stale_phase", "stale_attempt", "duplicate", "run_finished"}
    assert words <= FIELDS | reasons, words - FIELDS - reasons


def test_the_prelude_evaluates_to_the_python_definitions() -> None:
    server = fakeredis.FakeStrictRedis(decode_responses=True)
    keys = Keys("p")
    shard = keys.of_run("r1")
    # redis-py types eval for both clients (``Awaitable[str] | str``); this one is synchronous
    got: object = server.eval(
        lua_prelude()
        + f"local b = '{shard.base}'\n"
        + "return {state_index(b, 'RUNNING'), flow_index(b, 'f'), key_ref(b, 'k'), "
        "run_hash(b, 'r1'), finished_channel('p'), LATE_RESULT, DEADLINE_MARK, "
        "STATE.COMPENSATION_FAILED, PHASE.BACKOFF, OUTCOME.ALREADY_APPLIED, BEAT.STARTED, "
        "tostring(TERMINAL['FAILED']), tostring(TERMINAL['RUNNING'])}",
        0,
    )
    assert got == [
        shard.state_index("RUNNING"),
        shard.flow_index("f"),
        shard.by_key("k"),
        keys.run("r1"),
        keys.finished_channel,
        KIND_CODES[EventKind.LATE_RESULT],
        "|deadline|",
        RunState.COMPENSATION_FAILED.value,
        Phase.BACKOFF.value,
        Outcome.ALREADY_APPLIED.value,
        BeatOutcome.STARTED,
        "true",
        "nil",
    ]


def test_run_fields_are_typed_and_checked() -> None:
    error = ErrorInfo(type="Boom", message="x")
    fields = RunFields.of({"error": error.model_dump(), "out:2": {"n": 1}, "hook_pending": None})
    assert fields.error == error and fields.outputs == {2: {"n": 1}}
    assert fields.hook_pending is None and fields.step_input is UNSET
    assert dict(fields.stored()) == {
        "error": error.model_dump(exclude_none=True),
        "hook_pending": None,
        "out:2": {"n": 1},
    }
    merged = fields.merged(RunFields(step_input={"a": 1}, outcome=RunState.FAILED))
    assert merged.get("outcome") == "FAILED" and merged.get("step_input") == {"a": 1}
    with pytest.raises(ValueError, match="cannot write the run field 'state'"):
        RunFields.of({"state": "RUNNING"})


def test_script_arguments_are_named_on_both_sides() -> None:
    args = ScriptArgs(scalars=("a", "b"), lists=("xs", "ys"))
    assert args.argv(b=2, a=1, xs=["p", "q"], ys=[]) == [1, 2, 2, "p", "q", 0]
    with pytest.raises(ValueError, match=r"missing \['ys'\], unexpected \['zz'\]"):
        args.argv(a=1, b=2, xs=[], zz=3)
    server = fakeredis.FakeStrictRedis(decode_responses=True)
    got: object = server.eval(  # typed Awaitable | str by redis-py; this client is synchronous
        args.lua() + "return {a, b, xs_n, ARGV[xs_at], ARGV[xs_at + 1], ys_n}",
        0,
        *args.argv(a="A", b="B", xs=["p", "q"], ys=[]),
    )
    assert got == ["A", "B", 2, "p", "q", 0]
    declared = TRANSITION_ARGS.lua()
    script = resources.files("orch_serv.store").joinpath("lua", "transition.lua").read_text()
    code = "\n".join(line.split("--")[0] for line in script.splitlines())
    assert "ARGV[" not in code.replace("ARGV[j", "").replace("ARGV, ", "")
    for name in TRANSITION_ARGS.scalars + TRANSITION_ARGS.lists:
        assert name in declared and name in code, name
