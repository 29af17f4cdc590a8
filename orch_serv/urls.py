"""Connection URLs: checking them before anything connects, and masking their secrets.

Every message that shows a URL (settings errors, connection errors of the store and the
transport, the CLI) shows :func:`mask_url` of it, so a password never reaches a terminal or
a log: ``amqp://guest:****@rabbit:5672/``.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

#: What a masked secret looks like.
MASK = "****"
AMQP_SCHEMES = ("amqp", "amqps", "memory")
REDIS_SCHEMES = ("redis", "rediss", "unix", "memory")
#: Query parameters whose value is a secret (redis-py and aio-pika accept some of these).
_SECRET_PARAMS = re.compile(r"pass|secret|token|key", re.IGNORECASE)
#: ``scheme://user:password@`` in text that does not parse as a URL.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/@\s:]*:)[^/@\s]*@")


def mask_url(url: str) -> str:
    """``url`` with its password (and any secret query parameter) replaced by ``****``.

    Never raises: text that is not a URL is returned with anything that looks like
    ``scheme://user:password@`` masked."""
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


def check_amqp_url(url: str) -> str:
    """``url`` if it is a RabbitMQ URL aio-pika can use (``amqp://``, ``amqps://``) or an
    embedded one (``memory://``); else :class:`ValueError` naming the masked URL."""
    parts = _split(url, AMQP_SCHEMES)
    if parts.scheme != "memory" and not parts.hostname:
        raise ValueError(f"{mask_url(url)!r} has no host (expected amqp://user:pass@host:5672/)")
    return url


def check_redis_url(url: str) -> str:
    """``url`` if it is a Redis URL redis-py can use (``redis://``, ``rediss://``,
    ``unix://``) or an embedded one (``memory://``); else :class:`ValueError` naming the
    masked URL."""
    parts = _split(url, REDIS_SCHEMES)
    if parts.scheme in ("redis", "rediss"):
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(
                f"{mask_url(url)!r} names database {db!r}: expected a number (redis://host:6379/0)"
            )
    return url


def _split(url: str, schemes: tuple[str, ...]) -> SplitResult:
    expected = ", ".join(f"{s}://" for s in schemes)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"{mask_url(url)!r} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes or "://" not in url:
        raise ValueError(f"{mask_url(url)!r} is not a URL of {expected}")
    return parts
