"""Status lines across processes and machines, through PostgreSQL LISTEN/NOTIFY.

With several gunicorn workers (or app servers) the ``/getData/`` request that
posts a status line and the ``/eventSource/`` stream that should show it are
usually held by different processes. So :meth:`PGBroadcaster.publish` does a
``NOTIFY`` instead of a local fan-out, and one listener thread per store
(per process) ``LISTEN``s and hands every line to the streams of its own
process, the publishing process included (that keeps every stream's lines in
the order the database committed them).

Each process numbers the lines it hears itself (broadcast.py): the ids a
stream gets are those of the process that holds it, and ``Last-Event-ID``
resumes exactly on that process only (docs/deploy.md).

The listener also hears ``citystack_version``, which a load sends when it
commits, so a process drops its cached data version at once instead of at
the end of its cache time.

The listener keeps its own connection (a pooled one could not wait for
notifications) and reconnects with backoff when the database goes away.
While it is down, lines would be lost, so :meth:`publish` then falls back to
this process's streams.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import psycopg

from .broadcast import Broadcaster

STATUS_CHANNEL = "citystack_status"
VERSION_CHANNEL = "citystack_version"
MAX_PAYLOAD = 7000  # NOTIFY payloads must stay under 8000 bytes
IDLE_PING = 30.0  # seconds without notifications after which the listener checks its connection
log = logging.getLogger("citystack")


class PGBroadcaster(Broadcaster):
    """Same interface as :class:`citystack.broadcast.Broadcaster`; reaches every process."""

    def __init__(self, url: str, pool, on_version: Callable[[], None] = lambda: None,
                 connect_kwargs: dict | None = None):
        super().__init__()
        self._pool = pool
        self._on_version = on_version
        self._listener = _Listener(url, connect_kwargs or {}, self._heard)
        self._listener.start()

    def publish(self, line: str) -> None:
        payload = line.encode()[:MAX_PAYLOAD].decode(errors="ignore")
        if self._listener.connected:
            try:
                with self._pool.connection(timeout=2.0) as conn:
                    conn.execute("SELECT pg_notify(%s, %s)", [STATUS_CHANNEL, payload])
                return
            except Exception as exc:  # a status line must never fail the request posting it
                log.warning("status line not broadcast (%s); showing it in this process only", exc)
        super().publish(line)

    def wait_listening(self, timeout: float = 10.0) -> bool:
        """True once the listener is connected (for tests and start-up)."""
        return self._listener.ready.wait(timeout)

    def close(self) -> None:
        self._listener.stop()

    def _heard(self, channel: str, payload: str) -> None:
        if channel == STATUS_CHANNEL:
            super().publish(payload)
        else:
            self._on_version()


class _Listener(threading.Thread):
    def __init__(self, url: str, connect_kwargs: dict, deliver: Callable[[str, str], None]):
        super().__init__(name="citystack-listen", daemon=True)
        self.url, self.kwargs, self.deliver = url, connect_kwargs, deliver
        self.ready = threading.Event()
        self._halt = threading.Event()
        self._conn: psycopg.Connection | None = None

    @property
    def connected(self) -> bool:
        return self.ready.is_set()

    def stop(self) -> None:
        self._halt.set()
        self.join(5.0)

    def run(self) -> None:
        backoff = 0.2
        while not self._halt.is_set():
            try:
                self._conn = psycopg.connect(self.url, autocommit=True, **self.kwargs)
                for channel in (STATUS_CHANNEL, VERSION_CHANNEL):
                    self._conn.execute(f"LISTEN {channel}")
                self.ready.set()
                backoff = 0.2
                self.deliver(VERSION_CHANNEL, "")  # notifications may have been missed while down
                self._listen(self._conn)
            except Exception as exc:  # noqa: BLE001 - whatever it was, this thread must go on
                if self.ready.is_set():
                    log.warning("lost the notification connection (%s); reconnecting", _first_line(exc))
            finally:
                self.ready.clear()
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
            self._halt.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _listen(self, conn: psycopg.Connection) -> None:
        quiet_since = time.monotonic()
        while not self._halt.is_set():
            for note in conn.notifies(timeout=0.5):
                self.deliver(note.channel, note.payload)
                quiet_since = time.monotonic()
            if time.monotonic() - quiet_since > IDLE_PING:  # find a dead peer on a quiet line
                conn.execute("SELECT 1")
                quiet_since = time.monotonic()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
