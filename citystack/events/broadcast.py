"""Status lines for the 2015 ``/eventSource/`` stream.

Every open stream gets every line posted after it opened, and a stream that
opens gets the lines of the last few seconds first (the 2015 page posts
``/getData/`` and opens its stream at the same moment: without that, its
first status lines were often gone before it had subscribed).

Each line gets an event id, ``<process>-<n>``: `n` increases by one with
every line this hub hands out, and `<process>` names the hub (one per
server process). A stream that reconnects with ``Last-Event-ID`` gets the
lines after it that the hub still holds (the last :data:`RING_SIZE`); an id
of another process (or of a server since restarted) means nothing here, so
such a stream is treated as a new one (the last few seconds' lines).

Each subscriber has a small bounded queue: a slow or vanished client loses
old lines rather than growing memory, and a closed stream unsubscribes itself.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from typing import Callable, Iterator, NamedTuple

from .sse import comment, frame

QUEUE_SIZE = 100  # lines waiting for one slow stream
RING_SIZE = 100  # lines kept for streams that resume or open
REPLAY_SECONDS = 5.0  # a new stream gets the lines of the last this many seconds
_END = object()  # the hub is closing: streams end (the browser reconnects elsewhere)


class Line(NamedTuple):
    n: int
    at: float
    text: str


class Subscription:
    def __init__(self, hub: "Broadcaster", backlog: list[Line]):
        self._hub = hub
        self.backlog = backlog  # lines posted before it subscribed, oldest first
        self._lines: collections.deque = collections.deque(maxlen=QUEUE_SIZE)
        self._ready = threading.Condition()

    def put(self, line) -> None:
        with self._ready:
            self._lines.append(line)
            self._ready.notify()

    def get(self, timeout: float):
        """The next :class:`Line` (or the end marker), or None after `timeout` seconds without one."""
        with self._ready:
            if not self._lines:
                self._ready.wait(timeout)
            return self._lines.popleft() if self._lines else None

    def close(self) -> None:
        self._hub.unsubscribe(self)


class Broadcaster:
    """In-process fan-out of status lines to every open stream."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.process = secrets.token_hex(3)  # names this hub in its event ids
        self._clock = clock
        self._subs: set[Subscription] = set()
        self._ring: collections.deque[Line] = collections.deque(maxlen=RING_SIZE)
        self._last = 0
        self._lock = threading.Lock()

    def event_id(self, line: Line) -> str:
        return f"{self.process}-{line.n}"

    def subscribe(self, last_event_id: str | None = None) -> Subscription:
        """A new subscription, with the lines it missed as its backlog: those after
        `last_event_id` when that is one of this hub's ids, else those of the last
        :data:`REPLAY_SECONDS`. Backlog and live lines neither overlap nor leave a gap."""
        resume = self._resume_from(last_event_id)
        with self._lock:
            if resume is not None:
                backlog = [line for line in self._ring if line.n > resume]
            else:
                since = self._clock() - REPLAY_SECONDS
                backlog = [line for line in self._ring if line.at >= since]
            sub = Subscription(self, backlog)
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, text: str) -> None:
        """Number the line, keep it, hand it to every stream of this process (in
        number order: under the lock, so that two posters cannot cross)."""
        with self._lock:
            self._last += 1
            line = Line(self._last, self._clock(), text)
            self._ring.append(line)
            for sub in self._subs:
                sub.put(line)

    def end_streams(self) -> None:
        """End every open stream (the server is stopping: clients reconnect, and
        resume with their Last-Event-ID where the hub can tell)."""
        with self._lock:
            for sub in self._subs:
                sub.put(_END)

    def _resume_from(self, last_event_id: str | None) -> int | None:
        process, _, n = (last_event_id or "").strip().partition("-")
        if process != self.process or not (n.isascii() and n.isdigit()):
            return None
        return int(n)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)


def event_stream(hub: Broadcaster, heartbeat: float = 10.0, last_event_id: str | None = None,
                 gone: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """``data: <line>`` events with ids for one client: the backlog, a
    ``: connected`` comment, then live lines, with comments as keep-alive.

    The stream ends when `gone()` says the client has left (asked at every
    heartbeat) or a write to its closed connection fails; either way it
    unsubscribes."""
    sub = hub.subscribe(last_event_id)
    try:
        for line in sub.backlog:
            yield frame(None, line.text, id=hub.event_id(line))
        yield comment("connected")
        while True:
            line = sub.get(heartbeat)
            if line is _END:
                return
            if line is not None:
                yield frame(None, line.text, id=hub.event_id(line))
            elif gone is not None and gone():
                return
            else:
                yield comment("keep-alive")
    finally:
        sub.close()
