"""Connection URLs: checking them before anything connects, and masking their secrets.

Every message that shows a URL (settings errors, connection errors of the store and the
transport, the CLI) shows :func:`mask_url` of it, so a password never reaches a terminal or
a log: ``amqp://guest:****@rabbit:5672/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

#: What a masked secret looks like.
MASK = "****"
AMQP_SCHEMES = ("amqp", "amqps", "memory")
REDIS_SCHEMES = ("redis", "rediss", "unix", "memory")
#: Query parameters whose value is a secret (redis-py and aio-pika accept some of these).
_SECRET_PARAMS = re.compile(r"pass|secret|token|key", re.IGNORECASE)
#: ``scheme://user:password@`` in text that does not parse as a URL.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/@\s:]*:)[^/@\s]*@")


def mask_url(url: str) -> str:
    """``url`` with its password (and any secret query parameter) replaced by ``****`` (each
    URL of a comma-separated list).

    Never raises: text that is not a URL is returned with anything that looks like
    ``scheme://user:password@`` masked."""
    if "," in url and url.count("://") > 1:
        parts = url.split(",")
        return ",".join(p[: len(p) - len(p.lstrip())] + _mask_one(p.lstrip()) for p in parts)
    return _mask_one(url)


def _mask_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostinfo = netloc.rpartition("@")
            if ":" in userinfo:
                user = userinfo.split(":", 1)[0]
                netloc = f"{user}:{MASK}@{hostinfo}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_SECRET_PARAMS.search(k) for k, _ in pairs):
                masked = [(k, MASK if _SECRET_PARAMS.search(k) else v) for k, v in pairs]
                query = urlencode(masked, safe="*")
        if (netloc, query) == (parts.netloc, parts.query):
            return url
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", url)


def split_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list (one URL is a list of one); blanks are ignored."""
    return [part.strip() for part in value.split(",") if part.strip()]


def check_amqp_url(url: str) -> str:
    """``url`` if it is a RabbitMQ URL aio-pika can use (``amqp://``, ``amqps://``), a
    comma-separated list of such URLs (the nodes to fail over between), or an embedded one
    (``memory://``); else :class:`ValueError` naming the masked URL."""
    urls = [part.strip() for part in url.split(",")] if "," in url else [url]
    for one in urls:
        if not one:
            raise ValueError(f"{mask_url(url)!r} has an empty entry in its list of URLs")
        parts = _split(one, AMQP_SCHEMES)
        if parts.scheme == "memory" and len(urls) > 1:
            raise ValueError(f"{mask_url(url)!r}: a memory:// URL cannot be part of a list")
        if parts.scheme != "memory" and not parts.hostname:
            raise ValueError(
                f"{mask_url(one)!r} has no host (expected amqp://user:pass@host:5672/)"
            )
    return url


def check_redis_url(url: str) -> str:
    """``url`` if it is a Redis URL redis-py can use (``redis://``, ``rediss://``,
    ``unix://``, ``redis+sentinel://``, ``redis+cluster://``) or an embedded one
    (``memory://``); else :class:`ValueError` naming the masked URL."""
    if is_sentinel_url(url) or is_cluster_url(url):
        try:
            parse_sentinel_url(url) if is_sentinel_url(url) else parse_cluster_url(url)
        except ValueError as exc:
            raise ValueError(f"{mask_url(url)!r}: {exc}") from None
        return url
    parts = _split(url, REDIS_SCHEMES)
    if parts.scheme in ("redis", "rediss"):
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(
                f"{mask_url(url)!r} names database {db!r}: expected a number (redis://host:6379/0)"
            )
    return url


#: Redis behind Sentinel (orch_serv.store.sentinel).
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: bool = False


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` names Redis behind Sentinel."""
    return url.split("://", 1)[0] in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a ``redis+sentinel://`` URL; ``ValueError`` (without the password) for a
    malformed one."""
    scheme, _, rest = url.partition("://")
    if scheme not in SENTINEL_SCHEMES:
        raise ValueError("not a redis+sentinel:// URL")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        hosts, userinfo = netloc, ""
    sentinels = tuple(_host(h) for h in hosts.split(","))
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ValueError("no service name (redis+sentinel://host:26379/SERVICE/0)")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"expected /SERVICE or /SERVICE/DB after the hosts, not /{path}")
    user, colon, password = userinfo.partition(":")
    options = parse_qs(query)
    unknown = sorted(set(options) - {"sentinel_password"})
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (only sentinel_password)")
    return SentinelUrl(
        sentinels=sentinels,
        service=unquote(parts[0]),
        db=int(parts[1]) if len(parts) == 2 else 0,
        username=unquote(user) or None,
        password=unquote(password) if colon else None,
        sentinel_password=options["sentinel_password"][0] if options else None,
        tls=scheme == "rediss+sentinel",
    )


#: A Redis Cluster (orch_serv.store.cluster).
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
CLUSTER_PORT = 6379


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """A parsed ``redis+cluster://`` URL: the nodes to discover the cluster from."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster."""
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """The parts of a ``redis+cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/0]``
    URL; ``ValueError`` (without the password) for a malformed one."""
    scheme, _, rest = url.partition("://")
    if scheme not in CLUSTER_SCHEMES:
        raise ValueError("not a redis+cluster:// URL")
    if "?" in rest:
        raise ValueError("a redis+cluster:// URL takes no options")
    netloc, _, path = rest.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has database 0 only, not /{path}")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        hosts, userinfo = netloc, ""
    user, colon, password = userinfo.partition(":")
    return ClusterUrl(
        nodes=tuple(_host(h, CLUSTER_PORT, "cluster node") for h in hosts.split(",")),
        username=unquote(user) or None,
        password=unquote(password) if colon else None,
        tls=scheme == "rediss+cluster",
    )


def _host(text: str, default_port: int = SENTINEL_PORT, what: str = "Sentinel") -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":")
    if not colon:
        host, port = port, str(default_port)
    if not host:
        raise ValueError(f"a {what} address without a host: {text!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{port!r} is not a port (in {text!r})")
    return host.strip("[]"), int(port)


def _split(url: str, schemes: tuple[str, ...]) -> SplitResult:
    expected = ", ".join(f"{s}://" for s in schemes)
    if schemes == REDIS_SCHEMES:
        expected += ", redis+sentinel://, redis+cluster://"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"{mask_url(url)!r} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes or "://" not in url:
        raise ValueError(f"{mask_url(url)!r} is not a URL of {expected}")
    return parts
