"""Typed settings. Library code receives a :class:`Settings`; only the CLI reads the environment.

Every field can be set from the environment with the ``ORCH_SERV_`` prefix, e.g.
``ORCH_SERV_AMQP_URL`` or ``ORCH_SERV_REDIS_URL``.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orch_serv.flow.policy import Timeouts
from orch_serv.store.keys import DEFAULT_SHARDS, MAX_SHARDS
from orch_serv.urls import check_amqp_url, check_redis_url
from orch_serv.urls import mask_url as mask_url  # re-exported: settings errors use it

LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
EMBEDDED_URL = "memory://"
#: Default of ``Settings.max_message_bytes`` (also what a :class:`Client` built without
#: settings enforces).
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class Settings(BaseSettings):
    """Connection and behaviour settings shared by orchestrators, services and clients."""

    model_config = SettingsConfigDict(env_prefix="ORCH_SERV_", frozen=True, extra="ignore")

    amqp_url: str | None = Field(
        None,
        description="RabbitMQ URL (aio-pika syntax), or memory:// for the embedded broker. "
        f"Unset: {LOCAL_AMQP_URL}, except in the all-in-one mode (embedded).",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL (redis-py syntax), or memory:// for the embedded store. "
        f"Unset: {LOCAL_REDIS_URL}, except in the all-in-one mode (embedded).",
    )
    namespace: str = Field(
        "orch_serv",
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="Prefix of every exchange and queue name.",
    )
    key_prefix: str = Field(
        "orch_serv",
        pattern=r"^[A-Za-z0-9_.\-:]+$",
        description="Prefix of every Redis key.",
    )
    shards: int = Field(
        DEFAULT_SHARDS,
        ge=1,
        le=MAX_SHARDS,
        description="Shards the runs are spread over (each with its own Redis hash slot, timer "
        "set and indexes). Fixed when a deployment first starts: every process of it must use "
        "the same count (docs/operations.md, 'Shards').",
    )
    service_prefetch: int = Field(
        32,
        ge=1,
        le=65535,
        description="Unacked AMQP messages one service process holds at once (under load a "
        "message may carry a batch of up to publish_batch_max commands).",
    )
    orchestrator_prefetch: int = Field(
        512, ge=1, le=65535, description="Unacked replies one orchestrator process holds at once."
    )
    handler_threads: int = Field(
        8, ge=1, description="Thread pool size for synchronous command handlers."
    )
    publish_batch_max: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Most envelopes sent together in one AMQP message under load (1 = never).",
    )
    quorum_queues: bool = Field(False, description="Declare quorum queues (clustered RabbitMQ).")
    delivery_limit: int = Field(
        20,
        ge=0,
        description="Quorum queues only: deliveries of one message (redeliveries and requeues "
        "count) after which RabbitMQ dead-letters it; 0 for no limit.",
    )
    retention_seconds: int = Field(
        7 * 24 * 3600, ge=1, description="How long a finished run is kept before it expires."
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES,
        ge=1024,
        description="Larger messages are dead-lettered; a larger start is refused.",
    )
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="How long SIGTERM waits for in-flight handlers."
    )
    connect_timeout_seconds: float = Field(
        10.0, gt=0, description="Timeout of the first connection to RabbitMQ and Redis."
    )
    default_timeouts: Timeouts = Field(
        default_factory=Timeouts,
        description="Step timeouts for blocks and flows that set none (JSON in the env var).",
    )
    timer_lease_seconds: float = Field(
        30.0, gt=0, description="A claimed timer falls due again if not handled by then."
    )
    timer_poll_seconds: float = Field(
        1.0, gt=0, description="Longest sleep of the timer loop (timers set by other replicas)."
    )
    timer_batch: int = Field(256, ge=1, description="Timers claimed per Redis round trip.")
    shard_lease_seconds: float = Field(
        10.0,
        gt=0,
        description="An orchestrator replica claims the timers of the shards it holds a lease "
        "on; a dead replica's shards are taken over by the others within this time.",
    )
    stranded_after_seconds: float = Field(
        30.0,
        ge=0,
        description="A run still waiting for its START or RESUME message this long (its "
        "client died before sending it) is sent one by the orchestrators' housekeeping.",
    )
    direct_starts: bool = Field(
        True,
        description="Clients commit a run's first dispatch and publish its command themselves "
        "(no START hop through an orchestrator) when the first step has no pre hook and is "
        "not a wait or a group; off, or with metrics or tracing on, they send a START.",
    )
    max_start_attempts: int = Field(
        5,
        ge=1,
        le=1000,
        description="A stranded run's START or RESUME is re-sent at most this many times; "
        "then the run ends FAILED (StartUndeliverable) instead of being re-sent for ever.",
    )
    presence_interval_seconds: float = Field(
        10.0,
        gt=0,
        description="How often an orchestrator announces itself in Redis; an orchestrator of "
        "another application refuses to start in a namespace announced within 3 intervals.",
    )
    housekeeping_interval_seconds: float = Field(
        300.0, gt=0, description="How often an orchestrator drops index entries of expired runs."
    )
    currency_check_after_seconds: float = Field(
        1.0,
        ge=0,
        description="A service worker with a run store reads the run's position before it "
        "starts a command older than this (queued while the service was down or busy, or "
        "redelivered): a command of a cancelled or finished run never starts. A younger one "
        "starts at once unless a cancel notice for its run arrived (0: check every command).",
    )
    once_ttl_seconds: float = Field(
        7 * 24 * 3600,
        gt=0,
        description="How long a handler's ctx.once() mark is kept (it must outlive every "
        "redelivery of the command; by default as long as a finished run is kept).",
    )
    start_attempts: int = Field(
        0,
        ge=0,
        description="How many times a service worker tries to declare its queues and start "
        "consuming before it gives up (0 = until it succeeds or is stopped).",
    )
    start_attempt_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest time one start attempt of a service worker may take."
    )
    start_backoff_max_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest pause between two start attempts of a service worker (the pause "
        "doubles from 0.1 s up to this).",
    )
    api_host: str = Field("127.0.0.1", description="Address `orch-serv api` listens on.")
    api_port: int = Field(8000, ge=0, le=65535, description="Port of `orch-serv api`.")
    api_max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest HTTP request body the API accepts; above it answers 413.",
    )
    api_statusek_at_root: bool = Field(
        False,
        description="Also serve the Statusek surface at the root (`/instance/create`, ...), "
        "as the old server did; it is always at `/statusek`.",
    )
    api_stateservice_at_root: bool = Field(
        False,
        description="Also serve the StateService surface at the root (`/state`), as the old "
        "server did; it is always at `/stateservice`.",
    )
    api_sse_keepalive_seconds: float = Field(
        15.0, gt=0, description="A comment line on an idle event stream every so often."
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics at http://metrics_host:metrics_port/metrics from "
        "orchestrator and service processes (unset: no metrics; 0: any free port).",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the metrics endpoint listens on (0.0.0.0 in a container).",
    )
    log_level: str = Field("INFO", description="Level of orch_serv's structlog output.")
    log_format: Literal["console", "json"] = Field(
        "console", description="Log lines on stderr: console (for people) or json."
    )

    @field_validator("amqp_url")
    @classmethod
    def _check_amqp_url(cls, value: str | None) -> str | None:
        return None if value is None else check_amqp_url(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_redis_url(value)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(
                f"unknown log level {value!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        return level

    def urls(self, *, embedded_default: bool = False) -> tuple[str, str]:
        """(AMQP URL, Redis URL) to use: the configured ones, else the local servers, or the
        embedded backends when ``embedded_default`` (the all-in-one mode)."""
        if embedded_default:
            return self.amqp_url or EMBEDDED_URL, self.redis_url or EMBEDDED_URL
        return self.amqp_url or LOCAL_AMQP_URL, self.redis_url or LOCAL_REDIS_URL

    @property
    def configured(self) -> bool:
        """Whether both URLs were given (environment, options or code)."""
        return self.amqp_url is not None and self.redis_url is not None
