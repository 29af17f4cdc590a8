"""docker-compose.yml and the Dockerfile, checked without Docker.

Every container's command must name a real ``orch-serv`` sub-command with an app of the
right kind (or an importable ``python -m`` module), the images of RabbitMQ and Redis are
pinned, the connection URLs name the compose services, and the Dockerfile copies files that
exist (including every package a command imports).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml

from orch_serv.cli import app as cli_app
from orch_serv.loader import load
from orch_serv.orchestrator.app import Orchestrator
from orch_serv.service.definition import Service, as_services

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
WORKDIR = "/app"
#: The kind of app each APP-taking sub-command needs.
APP_KINDS = {"orchestrator": "orchestrator", "dev": "orchestrator", "service": "service"}
#: Long-running sub-commands that take no APP (they need no application code).
SERVERS = {"api"}
INFRA = {"rabbitmq": ("amqp", 5672), "redis": ("redis", 6379)}


# -- helpers ---------------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose().get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml has no services"
    return found


def app_services() -> dict[str, dict[str, Any]]:
    """The containers that run orch_serv code (everything but the infrastructure)."""
    return {name: svc for name, svc in services().items() if name not in INFRA}


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {} for name in deps}
    return {name: (cond or {}) for name, cond in deps.items()}


def cli_commands() -> dict[str, Any]:
    return dict(typer.main.get_group(cli_app).commands)


def cli_invocation(args: list[str]) -> tuple[str, list[str]]:
    """(sub-command, its positional arguments) of ``orch-serv [global options] SUB ...``."""
    group = typer.main.get_command(cli_app)
    takes_value = {
        opt: not getattr(param, "is_flag", False) for param in group.params for opt in param.opts
    }
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if "=" not in option:
            assert option in takes_value, f"unknown global option {option!r} in {args}"
            if takes_value[option]:
                rest.pop(0)
    assert rest, f"no sub-command in {args}"
    sub, *tail = rest
    command = typer.main.get_group(cli_app).commands[sub]
    sub_takes_value = {
        opt: not getattr(param, "is_flag", False)
        for param in command.params
        for opt in getattr(param, "opts", [])
        if opt.startswith("-")
    }
    positional: list[str] = []
    while tail:
        item = tail.pop(0)
        if not item.startswith("-"):
            positional.append(item)
            continue
        if "=" not in item:
            assert item in sub_takes_value, f"unknown option {item!r} of {sub} in {args}"
            if sub_takes_value[item]:
                tail.pop(0)
    return sub, positional


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            found.append((instruction.upper(), rest.strip()))
    return found


def copy_sources() -> list[str]:
    sources: list[str] = []
    for instruction, rest in dockerfile_instructions():
        if instruction not in ("COPY", "ADD"):
            continue
        parts = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        parts = [p for p in parts if not p.startswith("--")]
        assert len(parts) >= 2, f"{instruction} {rest}"
        sources += parts[:-1]
    return sources


def copied_top_level() -> set[str]:
    return {src.strip("/").split("/")[0] for src in copy_sources()}


@pytest.fixture(autouse=True)
def _repo_root_is_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps are loaded like the containers load them: from the working directory."""
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))


# -- commands --------------------------------------------------------------------------------
def test_the_expected_containers_are_defined() -> None:
    names = set(services())
    assert {
        "rabbitmq",
        "redis",
        "orchestrator",
        "validator",
        "transformer",
        "publisher",
        "demo",
    } <= names


@pytest.mark.parametrize("name", sorted(app_services()))
def test_every_command_names_a_real_cli_command(name: str) -> None:
    service = app_services()[name]
    assert "command" in service, f"{name} has no command"
    args = argv(service["command"])
    program, *rest = args
    if program == "orch-serv":
        sub, positional = cli_invocation(rest)
        commands = cli_commands()
        assert sub in commands, f"{name}: orch-serv has no sub-command {sub!r}"
        if sub in SERVERS:
            assert positional == [], f"{name}: {sub} takes no APP, got {positional}"
            return
        kind = APP_KINDS.get(sub)
        assert kind is not None, f"{name}: {sub!r} is not a long-running sub-command"
        assert len(positional) == 1, f"{name}: {sub} takes exactly one APP, got {positional}"
        obj = load(positional[0])
        if kind == "orchestrator":
            assert isinstance(obj, Orchestrator), f"{name}: {positional[0]} is {obj!r}"
        else:
            found = as_services(obj)
            assert found and all(isinstance(s, Service) for s in found)
    elif program in ("python", "python3"):
        assert rest[:1] == ["-m"] and len(rest) >= 2, f"{name}: expected python -m MODULE"
        module = rest[1]
        assert importlib.util.find_spec(module) is not None, f"{name}: cannot import {module}"
    else:
        pytest.fail(f"{name}: unexpected program {program!r}")


def test_the_example_roles_run_the_expected_apps() -> None:
    svc = app_services()
    assert argv(svc["orchestrator"]["command"]) == [
        "orch-serv",
        "orchestrator",
        "flows.ingest:orchestrator",
    ]
    for role in ("validator", "transformer", "publisher"):
        app_path = f"services_examples.{role}:service"
        assert argv(svc[role]["command"]) == ["orch-serv", "service", app_path]
        assert [s.name for s in as_services(load(app_path))] == [role]
    assert argv(svc["demo"]["command"]) == ["python", "-m", "services_examples.demo"]
    assert svc["demo"].get("profiles") == ["demo"]
    for name, service in svc.items():
        if name != "demo":
            assert "demo" not in (service.get("profiles") or []), name


def test_every_service_an_example_flow_uses_has_a_container() -> None:
    orchestrator = load("flows.ingest:orchestrator")
    needed = {step.service for spec in orchestrator.registry.specs() for step in spec.steps}
    hosted: set[str] = set()
    for service in app_services().values():
        args = argv(service["command"])
        if args[0] == "orch-serv":
            sub, positional = cli_invocation(args[1:])
            if sub == "service":
                hosted |= {s.name for s in as_services(load(positional[0]))}
    assert needed <= hosted, f"no container hosts {sorted(needed - hosted)}"


# -- images, dependencies, environment -------------------------------------------------------
@pytest.mark.parametrize("name", sorted(INFRA))
def test_infrastructure_images_are_pinned_to_a_major_version(name: str) -> None:
    image = services()[name]["image"]
    repository, _, tag = image.partition(":")
    assert repository == name
    assert re.fullmatch(r"\d+(\.\d+)*(-[A-Za-z0-9.]+)?", tag), f"{image!r} is not pinned"


def test_infrastructure_has_healthchecks_and_ports() -> None:
    svc = services()
    rabbit_check = " ".join(argv(svc["rabbitmq"]["healthcheck"]["test"]))
    assert "rabbitmq-diagnostics -q ping" in rabbit_check
    redis_check = " ".join(argv(svc["redis"]["healthcheck"]["test"]))
    assert "redis-cli ping" in redis_check
    assert {"5672:5672", "15672:15672"} <= {str(p) for p in svc["rabbitmq"]["ports"]}
    assert "6379:6379" in {str(p) for p in svc["redis"]["ports"]}


def test_every_depends_on_target_exists_and_is_healthy_when_required() -> None:
    svc = services()
    for name, service in svc.items():
        for target, condition in depends_on(service).items():
            assert target in svc, f"{name} depends on unknown service {target!r}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in svc[target], f"{target} has no healthcheck"


def test_app_containers_wait_for_healthy_rabbitmq_and_redis() -> None:
    for name, service in app_services().items():
        deps = depends_on(service)
        for infra in INFRA:
            assert deps.get(infra, {}).get("condition") == "service_healthy", (name, infra)


def test_connection_urls_point_at_the_compose_services() -> None:
    for name, service in app_services().items():
        env = environment(service)
        for infra, (scheme, port) in INFRA.items():
            variable = f"ORCH_SERV_{'AMQP' if infra == 'rabbitmq' else 'REDIS'}_URL"
            assert variable in env, f"{name} does not set {variable}"
            url = urlsplit(env[variable])
            assert (url.scheme, url.hostname, url.port) == (scheme, infra, port), (
                name,
                env[variable],
            )


def test_containers_share_the_data_volume() -> None:
    declared = set(compose().get("volumes") or {})
    for name, service in app_services().items():
        mounts = [str(v) for v in service.get("volumes") or []]
        data = [m for m in mounts if m.split(":")[1:2] == ["/data"]]
        assert data, f"{name} does not mount /data"
        assert data[0].split(":")[0] in declared, f"{name}: {data[0]} is not a named volume"


# -- the Dockerfile --------------------------------------------------------------------------
def test_app_containers_are_built_from_the_dockerfile() -> None:
    assert DOCKERFILE.is_file()
    for name, service in app_services().items():
        build = service.get("build")
        assert build is not None, f"{name} has no build"
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, name


def test_dockerfile_base_workdir_and_install() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert ("WORKDIR", WORKDIR) in instructions
    assert any(i == "RUN" and "pip install ." in rest for i, rest in instructions)


def test_dockerfile_copy_sources_exist() -> None:
    sources = copy_sources()
    assert sources
    for source in sources:
        assert list(ROOT.glob(source.rstrip("/"))), f"COPY source {source!r} is not in the repo"
    assert {"orch_serv", "flows", "services_examples", "pyproject.toml", "README.md"} <= (
        copied_top_level()
    )


def test_dockerfile_copies_every_package_a_command_imports() -> None:
    copied = copied_top_level()
    for name, service in app_services().items():
        args = argv(service["command"])
        if args[0] == "orch-serv":
            sub, positional = cli_invocation(args[1:])
            if sub in SERVERS:
                continue
            module = positional[0].partition(":")[0]
        else:
            module = args[2]
        top = module.split(".")[0]
        assert top in copied, f"{name} imports {module}, but the image lacks {top}/"


def test_the_api_healthcheck_probes_readyz_on_the_port_it_serves() -> None:
    api = services()["api"]
    command = argv(api["command"])
    port = command[command.index("--port") + 1]
    probe = argv(api["healthcheck"]["test"])
    assert probe[:3] == ["CMD", "python", "-c"]
    assert f"http://127.0.0.1:{port}/readyz" in probe[3]
    assert f"{port}:{port}" in {str(p) for p in api["ports"]}
