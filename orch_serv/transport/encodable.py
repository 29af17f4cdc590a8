"""The check every RabbitMQ publish makes before it reaches the channel.

aiormq 6.9 (``Channel.basic_publish``) increments the channel's delivery tag, which publisher
confirms are matched by, *before* it marshals the message; a publish whose properties pamqp
cannot encode (a header float beyond float32, an int beyond int64, ``bytes``, a message id
longer than 255 bytes...) raises after the tag was taken, and from then on every confirm of
that channel is matched to the wrong message. So the properties are marshalled here first,
exactly as aiormq will marshal them, and a failure raises :class:`UnencodableMessage` without
touching the channel.
"""

from __future__ import annotations

import aio_pika
from pamqp.header import ContentHeader

from orch_serv.exceptions import PublishError
from orch_serv.transport.wiresafe import SHORTSTR_MAX


class UnencodableMessage(PublishError):
    """A message's properties cannot be encoded (or exceed the frame size); it was not sent,
    and the channel was not touched."""


def check_encodable(message: aio_pika.Message, routing_key: str, frame_max: int) -> None:
    """Raise :class:`UnencodableMessage` unless ``message``'s properties marshal (as aiormq
    will marshal them) into one frame, and ``routing_key`` is a short string."""
    try:
        encoded = ContentHeader(body_size=len(message.body), properties=message.properties)
        size = len(encoded.marshal())
        if len(routing_key.encode("utf-8")) > SHORTSTR_MAX:
            raise ValueError(f"routing key longer than {SHORTSTR_MAX} bytes")
    except Exception as exc:  # whatever pamqp raises (TypeError, OverflowError, struct.error...)
        raise UnencodableMessage(
            f"message properties cannot be encoded: {type(exc).__name__}: {exc}"
        ) from exc
    if size + 8 > frame_max:
        raise UnencodableMessage(
            f"message properties take {size} bytes, more than a frame of {frame_max} holds"
        )
