"""Settings: defaults, environment overrides and validation."""

import os
from typing import Any

import pytest
from pydantic import ValidationError

from orch_serv.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no ORCH_SERV_* variables of the machine they run on."""
    for name in list(os.environ):
        if name.upper().startswith("ORCH_SERV_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = Settings()
    assert settings.amqp_url is None and settings.redis_url is None
    assert settings.urls() == ("amqp://guest:guest@127.0.0.1:5672/", "redis://127.0.0.1:6379/0")
    assert settings.urls(embedded_default=True) == ("memory://", "memory://")
    assert not settings.configured
    assert settings.namespace == "orch_serv"
    assert settings.key_prefix == "orch_serv"
    assert settings.service_prefetch == 32
    assert settings.orchestrator_prefetch == 512
    assert settings.handler_threads == 8
    assert settings.quorum_queues is False
    assert settings.retention_seconds == 7 * 24 * 3600
    assert settings.max_message_bytes == 8 * 1024 * 1024
    assert settings.log_format == "console"


def test_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_SERV_NAMESPACE", "tenant-a.prod")
    monkeypatch.setenv("ORCH_SERV_SERVICE_PREFETCH", "4")
    monkeypatch.setenv("ORCH_SERV_QUORUM_QUEUES", "true")
    monkeypatch.setenv("ORCH_SERV_REDIS_URL", "redis://cache:6380/2")
    settings = Settings()
    assert settings.namespace == "tenant-a.prod"
    assert settings.service_prefetch == 4
    assert settings.quorum_queues is True
    assert settings.redis_url == "redis://cache:6380/2"


def test_env_without_prefix_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE", "other")
    assert Settings().namespace == "orch_serv"


def test_arguments_override() -> None:
    settings = Settings(namespace="x", key_prefix="app:runs")
    assert settings.namespace == "x"
    assert settings.key_prefix == "app:runs"


def test_invalid_namespace_argument() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(namespace="has space")
    assert info.value.errors()[0]["loc"] == ("namespace",)


def test_invalid_namespace_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_SERV_NAMESPACE", "has space")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("namespace", ""),
        ("namespace", "a:b"),
        ("key_prefix", "a b"),
        ("service_prefetch", 0),
        ("orchestrator_prefetch", 70000),
        ("handler_threads", 0),
        ("max_message_bytes", 10),
        ("connect_timeout_seconds", 0),
        ("log_format", "xml"),
    ],
)
def test_invalid_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        invalid: dict[str, Any] = {field: value}
        Settings(**invalid)


def test_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.namespace = "other"  # type: ignore[misc]
