"""Messages and call logs shared by the 0.2 behaviour tests."""

from __future__ import annotations

from pydantic import BaseModel

from orch_serv.msg import BaseOrchServMsg


class Body(BaseModel):
    value: int = 0


class Header(BaseModel):
    source: str | None = None
    flow: str | None = None
    target: str | None = None
    command: str | None = None


class Msg(BaseOrchServMsg[Body, Header]):
    """A message whose hooks read and write its header (created when missing)."""

    def _header(self) -> Header:
        if self.header is None:
            self.header = Header()
        return self.header

    def get_source(self) -> str | None:
        return self._header().source

    def set_source(self, source: str) -> None:
        self._header().source = source

    def get_flow(self) -> str | None:
        return self._header().flow

    def get_target(self) -> str | None:
        return self._header().target

    def get_command(self) -> str | None:
        return self._header().command


def msg(
    value: int = 0,
    *,
    flow: str | None = None,
    target: str | None = None,
    source: str | None = None,
    command: str | None = None,
) -> Msg:
    """A message routed to ``flow``/``target``/``command`` with ``source`` set."""
    return Msg(
        body=Body(value=value),
        header=Header(flow=flow, target=target, source=source, command=command),
    )
