"""Connection URLs: checked before anything connects, secrets masked in every message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orch_serv.settings import Settings, mask_url
from orch_serv.urls import check_amqp_url, check_redis_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:****@127.0.0.1:5672/"),
        ("amqps://u:p%40ss@rabbit.example:5671/vh", "amqps://u:****@rabbit.example:5671/vh"),
        ("redis://:s3cret@cache:6379/0", "redis://:****@cache:6379/0"),
        ("redis://cache:6379/0?password=s3cret&db=1", "redis://cache:6379/0?password=****&db=1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("amqp://guest@host/", "amqp://guest@host/"),
        ("memory://demo", "memory://demo"),
        ("notaurl", "notaurl"),
        ("amqp://u:s3cret@[::1/", "amqp://u:****@[::1/"),  # does not parse: masked anyway
    ],
)
def test_mask_url_hides_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "s3cret" not in mask_url(url)


@pytest.mark.parametrize(
    "url", ["amqp://guest:guest@127.0.0.1:5672/", "amqps://h/", "memory://", "memory://x"]
)
def test_good_amqp_urls(url: str) -> None:
    assert check_amqp_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("notaurl", "'notaurl' is not a URL of amqp://, amqps://, memory://"),
        ("http://h/", "is not a URL of amqp://"),
        ("amqp://", "has no host"),
        ("amqp://u:s3cret@h:port/", "'amqp://u:****@h:port/' is not a valid URL"),
    ],
)
def test_bad_amqp_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_amqp_url(url)
    assert message in str(info.value) and "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://h", "unix:///tmp/redis.sock", "memory://"]
)
def test_good_redis_urls(url: str) -> None:
    assert check_redis_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("notaurl", "is not a URL of redis://, rediss://, unix://, memory://"),
        ("redis://h:6379/zero", "names database 'zero'"),
        ("redis://:s3cret@h:x/0", "'redis://:****@h:x/0' is not a valid URL"),
    ],
)
def test_bad_redis_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_redis_url(url)
    assert message in str(info.value) and "s3cret" not in str(info.value)


def test_settings_refuse_bad_urls_without_echoing_the_password() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(amqp_url="amqp://u:s3cret@h:notaport/")
    [error] = info.value.errors(include_input=False)
    assert error["loc"] == ("amqp_url",)
    assert "s3cret" not in str(error["msg"])


def test_settings_normalise_the_log_level() -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValidationError, match="unknown log level 'loud'"):
        Settings(log_level="loud")


def test_a_list_of_rabbitmq_urls() -> None:
    listed = "amqp://u:s3cret@rabbit-1:5672/, amqps://u:s3cret@rabbit-2:5671/"
    assert check_amqp_url(listed) == listed
    assert mask_url(listed) == "amqp://u:****@rabbit-1:5672/, amqps://u:****@rabbit-2:5671/"
    assert Settings(amqp_url=listed).amqp_url == listed


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("amqp://u:s3cret@h1/,", "has an empty entry"),
        ("amqp://u:s3cret@h1/,memory://x", "memory:// URL cannot be part of a list"),
        ("amqp://u:s3cret@h1/,amqp:///", "'amqp:///' has no host"),
        ("amqp://u:s3cret@h1/,redis://h2/", "is not a URL of amqp://"),
    ],
)
def test_bad_lists_of_rabbitmq_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_amqp_url(url)
    assert message in str(info.value) and "s3cret" not in str(info.value)


def test_a_sentinel_url() -> None:
    from orch_serv.urls import SentinelUrl, parse_sentinel_url

    url = "redis+sentinel://app:s3cret@s1:26380,s2/prod/3?sentinel_password=sp"
    assert check_redis_url(url) == url
    assert parse_sentinel_url(url) == SentinelUrl(
        sentinels=(("s1", 26380), ("s2", 26379)),
        service="prod",
        db=3,
        username="app",
        password="s3cret",
        sentinel_password="sp",
    )
    assert "s3cret" not in mask_url(url)
    assert parse_sentinel_url("rediss+sentinel://:pw@s1/prod").tls
    assert parse_sentinel_url("redis+sentinel://s1/prod").password is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://:s3cret@s1:26379", "no service name"),
        ("redis+sentinel://:s3cret@s1:26379/prod/zero", "expected /SERVICE or /SERVICE/DB"),
        ("redis+sentinel://:s3cret@s1:port/prod", "'port' is not a port"),
        ("redis+sentinel://:s3cret@:26379/prod", "without a host"),
        ("redis+sentinel://:s3cret@s1/prod?timeout=3", "unknown option 'timeout'"),
    ],
)
def test_bad_sentinel_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_redis_url(url)
    assert message in str(info.value) and "s3cret" not in str(info.value)
