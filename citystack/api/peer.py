"""Has the client gone away? A look at the request's socket that neither
blocks nor reads, for streams that would otherwise only find out when a
write fails (a heartbeat later, or two: the first write after the peer has
closed still succeeds).

A closed connection shows as a hang-up (``POLLRDHUP``/``POLLHUP``) or an
error on the socket; bytes the client sent after its request (a pipelined
request) are left where they are. The poll is the operating system's own,
not gevent's cooperative one: with a zero timeout it never waits, and it
takes descriptors above 1024, which ``select()`` does not.
"""

from __future__ import annotations

import select
import socket
import ssl
import sys
from typing import Callable

RDHUP = getattr(select, "POLLRDHUP", 0)  # Linux: the peer closed (or shut down its writing)
HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL | RDHUP


def _os_poll():
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("select"):
        return monkey.get_original("select", "poll")
    return select.poll


def gone_check(environ: dict) -> Callable[[], bool] | None:
    """A function telling whether the client of this request has left, or
    None when the server does not say which socket it is on (the test client)."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    try:
        fd = sock.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    if fd < 0:
        return None
    tls = isinstance(sock, ssl.SSLSocket)
    make_poll = _os_poll()

    def gone() -> bool:
        poll = make_poll()
        try:
            poll.register(fd, select.POLLIN | RDHUP)
            events = poll.poll(0)
        except (OSError, ValueError):
            return True
        mask = events[0][1] if events else 0
        if mask & HANGUP:
            return True
        if mask & select.POLLIN and not RDHUP and not tls:  # no POLLRDHUP: look at the next byte
            try:
                return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                return False
            except OSError:
                return True
        return False

    return gone
