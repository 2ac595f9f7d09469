"""The connection guard: uvicorn's HTTP/1.1 protocol (h11) with header, body and send deadlines and a cap.

uvicorn bounds a request's header size (h11, 16 KiB) and idle kept-alive
connections (``timeout_keep_alive``), but not how long headers or a body may
take to arrive, nor how many connections may be open: half-sent headers stay
open for ever, and a body nobody reads (one already answered with 413, 503
or 401) is received and discarded for as long as the client trickles it.
:class:`GuardedH11Protocol` closes a connection whose request headers are not
complete ``header_timeout_s`` after the connection (or, on a kept-alive one,
the request's first byte), or whose body is still arriving ``body_timeout_s``
after its headers once the app has answered (while the app reads, its own
deadline answers 408), or whose response is not all sent ``send_timeout_s``
after it first had to wait for the client to read (uvicorn has no write
timeout: a client that never reads would hold its connection and the unsent
answer in memory for ever); connections beyond ``max_connections`` are
answered 503 and closed as they are accepted.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._limits import Limits, limits_from_env

__all__ = ["GuardedH11Protocol", "guarded_protocol"]

_BUSY = b'{"error":"server busy: too many connections; retry later"}'
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_BUSY)).encode() + b"\r\n\r\n" + _BUSY
)
#: How often a body deadline that passed while the app was still answering is looked at again (s).
_RECHECK_S = 0.5


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the header, body and send deadlines and connection cap of :attr:`limits`.

    ``limits`` None (this class as such, e.g. ``--http
    jointdnn_edge.server._guard:GuardedH11Protocol``): the limits of
    ``JOINTDNN_EDGE_SERVE_CONFIG``, or the defaults.
    """

    limits: ClassVar[Limits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.limits is None:
            cls.limits = limits_from_env()
        self._limits: Limits = cls.limits
        self._timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "head" or "body": what the armed timer waits for
        self._send_timer: asyncio.TimerHandle | None = None  # armed while a response waits for the client to read
        self._send_cycle: object | None = None  # the request cycle whose answer armed it

    # ------------------------------------------------------------ protocol events
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self.connections.discard(self)
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self._arm("head", self._limits.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self._phase is None and self.conn.their_state is h11.IDLE:
            self._arm("head", self._limits.header_timeout_s)  # a new request on a kept-alive connection
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._disarm_send()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        # the transport holds more than its high-water mark: the client reads slower than we send
        super().pause_writing()
        if self._send_timer is None or self._send_cycle is not self.cycle:
            self._arm_send()  # a new answer waits: a timer left from an earlier answer is not its deadline

    def _arm_send(self) -> None:
        self._disarm_send()
        self._send_cycle = self.cycle
        self._send_timer = self.loop.call_later(self._limits.send_timeout_s, self._send_expired)

    def resume_writing(self) -> None:
        super().resume_writing()
        if not self.transport.get_write_buffer_size():
            self._disarm_send()  # all of it was sent

    def _disarm_send(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
        self._send_timer = None

    def _send_expired(self) -> None:
        """Drop the connection, unsent bytes and all, when the answer that waited is still not all sent.

        The transport says when its buffer falls under the low-water mark, not when it empties, so a timer
        can outlive its answer; if a later answer is the one waiting now, it gets a whole deadline of its own.
        """
        self._send_timer = None
        if not self.transport.get_write_buffer_size():
            return
        if self._send_cycle is not self.cycle:
            self._arm_send()
            return
        self.transport.abort()  # close() would wait, for ever, for the client to read the rest

    # ------------------------------------------------------------ the deadlines
    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._phase = None

    def _follow(self) -> None:
        """Move the deadline along with the request: headers, then body, then none (the app's turn)."""
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body", self._limits.body_timeout_s)
        elif state is not h11.IDLE or self._phase == "body":
            self._disarm()  # the request is in, or the next cycle began
        if state is h11.IDLE and self._phase is None and self.conn.trailing_data[0]:
            self._arm("head", self._limits.header_timeout_s)  # part of the next request is already here

    def _expired(self) -> None:
        self._timer = None
        state = self.conn.their_state
        if self._phase == "head" and state is h11.IDLE:
            self._close()
        elif self._phase == "body" and state is h11.SEND_BODY:
            if self.cycle is not None and not self.cycle.response_complete:
                self._timer = self.loop.call_later(_RECHECK_S, self._expired)  # the app answers first (408)
            else:
                self._close()  # answered, and the rest of the body still trickles in
        else:
            self._phase = None

    def _close(self) -> None:
        self._phase = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: Limits) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` enforcing ``limits`` (pass it to uvicorn as ``http=``)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})
