"""Status lines for the 2015 ``/eventSource/`` stream.

Every open stream gets every line posted after it opened. Each subscriber
has a small bounded queue: a slow or vanished client loses old lines rather
than growing memory, and a closed stream unsubscribes itself.
"""

from __future__ import annotations

import collections
import threading
from typing import Iterator

from .sse import comment, frame

QUEUE_SIZE = 100


class Subscription:
    def __init__(self, hub: "Broadcaster"):
        self._hub = hub
        self._lines: collections.deque[str] = collections.deque(maxlen=QUEUE_SIZE)
        self._ready = threading.Condition()

    def put(self, line: str) -> None:
        with self._ready:
            self._lines.append(line)
            self._ready.notify()

    def get(self, timeout: float) -> str | None:
        """The next line, or None after `timeout` seconds without one."""
        with self._ready:
            if not self._lines:
                self._ready.wait(timeout)
            return self._lines.popleft() if self._lines else None

    def close(self) -> None:
        self._hub.unsubscribe(self)


class Broadcaster:
    """In-process fan-out of status lines to every open stream."""

    def __init__(self):
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, line: str) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.put(line)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)


def event_stream(hub: Broadcaster, heartbeat: float = 10.0) -> Iterator[bytes]:
    """``data: <line>`` events for one client, with comments as keep-alive
    (a write to a closed connection ends the generator and unsubscribes)."""
    sub = hub.subscribe()
    try:
        yield comment("connected")
        while True:
            line = sub.get(heartbeat)
            yield comment("keep-alive") if line is None else frame(None, line)
    finally:
        sub.close()
