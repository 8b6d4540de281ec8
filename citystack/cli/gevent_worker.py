"""gunicorn's gevent worker, as citystack runs it (``CITYSTACK_SERVER=gevent``).

Every connection is a greenlet, so an open event stream costs a few
kilobytes and no thread. Three things are added to gunicorn's worker:

- **a header timeout of its own.** gunicorn bounds the reading of every
  request's headers by its keep-alive time; here a connection's first request
  gets ``CITYSTACK_HEADER_TIMEOUT`` seconds (counted from the accept) and each
  later one ``CITYSTACK_KEEPALIVE`` (counted from the end of the previous
  answer). A connection that has not sent its headers by then is closed: a
  slow-header client (slowloris) holds a greenlet for that long, no more.
- **cooperative PostgreSQL waits.** See :func:`cooperative_psycopg`.
- **a quick graceful stop.** Event streams and idle kept-alive connections
  end at once instead of holding the worker to gunicorn's graceful timeout.

This module imports gevent; nothing imports it unless that worker is chosen.
"""

from __future__ import annotations

import _socket
import contextlib
import os
import selectors
import socket

import gevent
from gevent.local import local
from gunicorn.workers.ggevent import GeventWorker


def cooperative_psycopg() -> None:
    """Make psycopg wait for its sockets the gevent way, once monkey-patched.

    psycopg chooses how to wait when it is first imported: its C function
    ``wait_c`` unless ``select`` is patched by then (it then takes
    ``wait_poll``), and the selector it connects with (``DefaultSelector``,
    bound by name). ``citystack serve`` imports it in gunicorn's master, before
    any patching (it checks that the database answers), so a worker would
    inherit ``wait_c``, which blocks the whole process while it waits (the
    notification listener waits half a second at a time), and the epoll
    selector, which does the same while connecting (measured: no other greenlet
    ran during a 0.5 s query nor during a 1 s connect timeout). So: the choice
    psycopg makes after patching, ``wait_poll``, which looks up ``select.poll``
    at each call and so gets gevent's (cooperative; unlike gevent's
    ``select()``, it takes descriptors above 1024, which a worker holding a
    thousand streams opens), and gevent's selector to connect."""
    from psycopg import waiting

    waiting.wait = waiting.wait_poll
    waiting.DefaultSelector = selectors.DefaultSelector


TURN = 0.0001  # seconds: a timer, not sleep(0), which lets the event loop's I/O wait


class Worker(GeventWorker):
    def patch(self):
        super().patch()
        cooperative_psycopg()

    def init_process(self):
        self._connection = local()  # per greenlet, that is per connection
        self._waiting: set[socket.socket] = set()  # connections waiting for a request's headers
        settings = self.app.settings
        self._header_timeout, self._keepalive = settings.header_timeout, settings.keepalive
        super().init_process()

    def handle(self, listener, client, addr):
        self._connection.answered, self._connection.sock = False, client
        super().handle(listener, client, addr)

    def handle_request(self, listener_name, req, sock, addr):
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            self._connection.answered = True
            # Take turns: a kept-alive connection whose next request is already
            # buffered would otherwise be served again at once, before any other
            # connection (greenlets switch only when they wait), and under full
            # load a few connections would take every turn (measured: p99 3.6 s).
            gevent.sleep(TURN)

    @contextlib.contextmanager
    def timeout_ctx(self):
        """Bounds the wait for the next request's headers (the caller closes the
        connection when it expires, or when the wait ends with no request)."""
        sock = self._connection.sock
        if not self.alive:  # stopping: no new request on a kept-alive connection
            _stop_reading(sock)
        self._waiting.add(sock)
        try:
            with gevent.Timeout(self._keepalive if self._connection.answered else self._header_timeout, False):
                yield
        finally:
            self._waiting.discard(sock)

    def handle_exit(self, sig, frame):
        """On a graceful stop, end the event streams and the waits for requests at
        once: they would otherwise hold the worker until gunicorn's graceful
        timeout. The streams' clients reconnect, to another worker or to the new
        server, and resume there (Last-Event-ID) as far as it can tell."""
        super().handle_exit(sig, frame)
        gevent.spawn(self._wind_down)

    def _wind_down(self):
        from ..state import state

        with self.wsgi.app_context():
            state().broadcaster.end_streams()
        for sock in list(self._waiting):
            _stop_reading(sock)


def _stop_reading(sock) -> None:
    """The connection's next read sees the end of its input, and the server
    closes it quietly. Done on a copy of its descriptor: gevent's own
    ``shutdown()`` would throw an error into the greenlet waiting on it (and
    gunicorn would log that error with its traceback)."""
    with contextlib.suppress(OSError, ValueError):
        copy = _socket.socket(fileno=os.dup(sock.fileno()))
        try:
            copy.shutdown(socket.SHUT_RD)
        finally:
            copy.close()
