"""Turning a validated flow file into the Python definitions it declares: ``Block``
instances, ``Flow`` subclasses built with ``FlowBuilder``/``FlowBlock`` (so a YAML flow gets
its spec and version from the very code a Python flow does) and an ``Orchestrator``.

Every error names the file, the line and the field; nothing is returned half-built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orch_serv.exceptions import OrchServError
from orch_serv.flow.block import Block
from orch_serv.flow.flow import Flow, FlowBlock, FlowBuilder
from orch_serv.flow.groups import Map, Parallel
from orch_serv.flow.waits import WaitForChart, WaitForSignal
from orch_serv.flow.yamlflows.model import IMPORT_PATTERN, BlockDef, FlowDef, FlowsFile, StepDef
from orch_serv.flow.yamlflows.text import FieldPath, YamlDocument
from orch_serv.service.definition import Service, as_services

Importer = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class FlowFile:
    """What a flow file declares, built: its flows (``Flow`` subclasses), its blocks, the
    defaults and the services ``orch-serv dev`` hosts with it."""

    source: str
    flows: tuple[type[Flow], ...]
    blocks: tuple[Block, ...]
    default_flow: str | None
    default_block: str | None
    services: tuple[Service, ...]


def validate(doc: YamlDocument) -> FlowsFile:
    """The document checked against :class:`FlowsFile` (the first problem is reported)."""
    if not isinstance(doc.data, dict):
        raise doc.error((), "a flow file is a mapping with `flows` (a list of flows)")
    try:
        return FlowsFile.model_validate(doc.data, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = tuple(p for p in first["loc"] if isinstance(p, (str, int)))
        raise doc.error(path, _problem(first)) from None


def _problem(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "a required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, not {_yaml_type(error['input'])}"
    if kind == "list_type":
        return f"expected a list, not {_yaml_type(error['input'])}"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == IMPORT_PATTERN:
            return f"{error['input']!r} is not an import path 'package.module:attribute'"
        return f"{error['input']!r} is not a name of 1-128 letters, digits, '_', '.' or '-'"
    return str(error["msg"]).removeprefix("Value error, ")


def _yaml_type(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    names |= {int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def build(doc: YamlDocument, spec: FlowsFile, importer: Importer) -> FlowFile:
    """Build the definitions of a validated flow file (hooks and services are imported with
    ``importer``, which raises :class:`OrchServError` for a bad path)."""
    _unique(doc, "blocks", [b.name for b in spec.blocks], "block")
    _unique(doc, "flows", [f.name for f in spec.flows], "flow")
    blocks = {b.name: _block(doc, ("blocks", i), b, importer) for i, b in enumerate(spec.blocks)}
    declared = {b.name: b for b in spec.blocks}
    flows = tuple(
        _flow(doc, ("flows", i), f, blocks, declared, importer) for i, f in enumerate(spec.flows)
    )
    if spec.default_flow is not None and spec.default_flow not in {f.name for f in spec.flows}:
        raise doc.error(("default_flow",), f"no flow {spec.default_flow!r} in `flows`")
    if spec.default_block is not None and spec.default_block not in blocks:
        raise doc.error(("default_block",), f"no block {spec.default_block!r} in `blocks`")
    services: list[Service] = []
    for i, path in enumerate(spec.services):
        try:
            services += as_services(importer(path))
        except OrchServError as exc:
            raise doc.error(("services", i), str(exc)) from None
    return FlowFile(
        doc.source,
        flows,
        tuple(blocks.values()),
        spec.default_flow,
        spec.default_block,
        tuple(services),
    )


def _unique(doc: YamlDocument, key: str, names: Sequence[str], what: str) -> None:
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            raise doc.error((key, i, "name"), f"{what} {name!r} is also {key}[{first[name]}]")
        first[name] = i


def _hook(doc: YamlDocument, path: FieldPath, value: str | None, importer: Importer) -> Any:
    if value is None:
        return None
    try:
        hook = importer(value)
    except OrchServError as exc:
        raise doc.error(path, str(exc)) from None
    if not callable(hook):
        raise doc.error(path, f"{value!r} is a {type(hook).__name__}, not a callable")
    return hook


def _block(doc: YamlDocument, path: FieldPath, spec: BlockDef, importer: Importer) -> Block:
    pre = _hook(doc, (*path, "pre_hook"), spec.pre_hook, importer)
    post = _hook(doc, (*path, "post_hook"), spec.post_hook, importer)
    try:
        return Block(
            spec.name,
            service=spec.service,
            command=spec.command,
            pre_handler_function=pre,
            post_handler_function=post,
            retry=spec.retry,
            timeouts=spec.timeouts,
            compensate=spec.compensate,
        )
    except OrchServError as exc:
        raise doc.error(path, str(exc)) from None


def _step(
    doc: YamlDocument,
    path: FieldPath,
    step: StepDef,
    blocks: dict[str, Block],
    declared: dict[str, BlockDef],
    importer: Importer,
) -> FlowBlock:
    if step.wait is not None:
        block: Block = _wait(doc, path, step)
    elif step.parallel is not None or step.map is not None:
        block = _group(doc, path, step, blocks, declared, importer)
    else:
        block = _command_block(doc, path, step, blocks, declared)
    pre = _hook(doc, (*path, "pre_hook"), step.pre_hook, importer)
    post = _hook(doc, (*path, "post_hook"), step.post_hook, importer)
    try:
        return FlowBlock(
            block,
            pre,
            post,
            retry=step.retry,
            timeouts=step.timeouts,
            compensate=step.compensate,
        )
    except OrchServError as exc:
        raise doc.error(path, str(exc)) from None


def _wait(doc: YamlDocument, path: FieldPath, step: StepDef) -> Block:
    wait = step.wait
    assert wait is not None
    # left out, `poll` is the factory's own default (chart or signal)
    options: dict[str, Any] = {"name": step.block, "timeout": wait.timeout}
    if wait.poll is not None:
        options["poll"] = wait.poll
    try:
        if wait.signal is not None:
            return WaitForSignal(wait.signal, **options)
        assert wait.chart is not None and wait.state is not None
        return WaitForChart(wait.chart, state=wait.state, machine=wait.machine, **options)
    except (OrchServError, ValueError) as exc:
        raise doc.error((*path, "wait"), str(exc)) from None


def _group(
    doc: YamlDocument,
    path: FieldPath,
    step: StepDef,
    blocks: dict[str, Block],
    declared: dict[str, BlockDef],
    importer: Importer,
) -> Block:
    """A ``parallel`` or ``map`` step: its branches built like the flow's own steps."""
    group = step.parallel or step.map
    assert group is not None
    # left out, `name` and `poll` are the factories' own defaults
    options: dict[str, Any] = {"join": group.join, "n": group.n, "timeout": group.timeout}
    if step.block is not None:
        options["name"] = step.block
    if group.poll is not None:
        options["poll"] = group.poll
    try:
        if step.parallel is not None:
            where = (*path, "parallel", "branches")
            branches = {
                name: [
                    _step(doc, (*where, name, i), s, blocks, declared, importer)
                    for i, s in enumerate(chain)
                ]
                for name, chain in step.parallel.branches.items()
            }
            return Parallel(branches, **options)
        assert step.map is not None
        chain = [
            _step(doc, (*path, "map", "steps", i), s, blocks, declared, importer)
            for i, s in enumerate(step.map.steps)
        ]
        return Map(chain, max_concurrency=step.map.max_concurrency, **options)
    except OrchServError as exc:
        raise doc.error((*path, "parallel" if step.parallel else "map"), str(exc)) from None


def _command_block(
    doc: YamlDocument,
    path: FieldPath,
    step: StepDef,
    blocks: dict[str, Block],
    declared: dict[str, BlockDef],
) -> Block:
    assert step.block is not None
    known = declared.get(step.block)
    if step.service is None:
        if known is None:
            raise doc.error(
                (*path, "block"),
                f"no block {step.block!r} in `blocks`; give the step a `service` to declare "
                "it here",
            )
        if step.command is not None and step.command != (known.command or known.name):
            raise doc.error(
                (*path, "command"),
                f"block {step.block!r} of `blocks` runs {known.command or known.name!r}",
            )
        block = blocks[step.block]
    else:
        block = Block(step.block, service=step.service, command=step.command)
        if known is not None and blocks[step.block].identity() != block.identity():
            raise doc.error(
                (*path, "service"),
                f"block {step.block!r} of `blocks` runs {blocks[step.block].command!r} on "
                f"{known.service!r}; use another block name for another command",
            )
    return block


def _flow(
    doc: YamlDocument,
    path: FieldPath,
    spec: FlowDef,
    blocks: dict[str, Block],
    declared: dict[str, BlockDef],
    importer: Importer,
) -> type[Flow]:
    steps = [
        _step(doc, (*path, "steps", i), s, blocks, declared, importer)
        for i, s in enumerate(spec.steps)
    ]
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": f"YamlFlow[{spec.name}]",
        "__doc__": spec.description or f"The flow {spec.name!r} of {doc.source}.",
        "name_flow": spec.name,
        "steps_flow": FlowBuilder(*steps),
        "retry_policy": spec.retry,
        "timeouts": spec.timeouts,
        "deadline": spec.deadline,
        "status_model": spec.status_model,
        "flow_file": doc.source,
    }
    try:
        return type(f"YamlFlow[{spec.name}]", (Flow,), namespace)
    except OrchServError as exc:
        raise doc.error((*path, "steps"), str(exc)) from None


__all__ = ["FlowFile", "build", "validate"]
