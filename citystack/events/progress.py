"""Progress events of long work, their stream, and cancellation.

Long work takes a :class:`Progress` and calls it now and then with a status
line. Each call is also a cancellation point: when the client has gone away
or the time limit has passed, the call raises and the work unwinds.

Each call (and each :meth:`Progress.check`) is a switch point too: it sleeps
a tenth of a millisecond (at most every :data:`SWITCH_EVERY` seconds), which
under gevent (the server's default worker, where the work runs in a greenlet)
lets the worker's other connections be served and the stream send the event
and notice a client that left; under threads it costs next to nothing. (Not a
zero sleep: gevent's ``sleep(0)`` lets ready greenlets run but fires timers
late, by hundreds of milliseconds when the caller computes between calls.)
So work holds its worker's other connections for at most the time between
two of its progress calls.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterator

from .sse import comment, frame


SWITCH_EVERY = 0.01  # seconds of work between two switch points, at least


class Cancelled(Exception):
    """The client went away; nobody wants the result."""


class TimeLimit(Exception):
    """The work passed its time limit."""


PROBE_EVERY = 0.2  # seconds between looks at whether the client is still there


class Progress:
    """`probe`, when given, is asked now and then (at most every PROBE_EVERY
    seconds, from :meth:`check`) whether the client has gone away; a true
    answer cancels the work."""

    def __init__(self, on_event: Callable[[str, float | None], None] | None = None,
                 time_limit: float | None = None, probe: Callable[[], bool] | None = None):
        self._on_event = on_event
        self._cancelled = threading.Event()
        self._probe = probe
        self._probed = 0.0
        self.started = time.monotonic()
        self.deadline = None if not time_limit else self.started + time_limit
        self.time_limit = time_limit
        self.messages: list[str] = []
        self._switched = self.started

    def __call__(self, message: str, fraction: float | None = None) -> None:
        self.check()
        self.messages.append(message)
        if self._on_event is not None:
            self._on_event(message, fraction)
            self._switch(force=True)  # the stream sends it now, not at the next switch point

    def check(self) -> None:
        self._switch()
        if self._probe is not None and not self._cancelled.is_set():
            now = time.monotonic()
            if now - self._probed >= PROBE_EVERY:
                self._probed = now
                if self._probe():
                    self.cancel()
        if self._cancelled.is_set():
            raise Cancelled()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise self.time_limit_error()

    def time_limit_error(self) -> TimeLimit:
        return TimeLimit(f"the work passed its time limit of {self.time_limit:g} s "
                         "(CITYSTACK_ANALYSIS_TIME_LIMIT); ask for a smaller view or fewer points")

    def remaining(self) -> float | None:
        """Seconds left before the time limit (None: no limit)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _switch(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._switched >= SWITCH_EVERY:
            time.sleep(0.0001)
            self._switched = time.monotonic()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


GONE_POLL = 0.5  # seconds between looks at whether the client of a progress stream is still there


def stream(work: Callable[[Progress], Any], on_error: Callable[[BaseException], dict],
           time_limit: float | None = None, heartbeat: float = 10.0,
           probe: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """Run `work` in a thread and yield its progress, then a result or error event.

    The work is cancelled (at its next progress call) when the consumer stops
    iterating (the server closed the generator: a write failed) or when
    `probe()` says the client has left, which the stream (and only the
    stream: the work's Progress is not given it too) asks every
    :data:`GONE_POLL` seconds while it waits: so a client that leaves is
    noticed within that, not a heartbeat or two later.
    """
    events: queue.Queue = queue.Queue()
    progress = Progress(lambda m, f: events.put(("progress", {"message": m, "fraction": f})), time_limit)

    def run():
        try:
            events.put(("result", work(progress)))
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an error event
            events.put(("error", on_error(exc)))

    thread = threading.Thread(target=run, name="citystack-work", daemon=True)
    thread.start()
    poll = heartbeat if probe is None else min(heartbeat, GONE_POLL)
    try:
        yield comment("started")
        quiet_since = checked = time.monotonic()
        while True:
            try:
                kind, payload = events.get(timeout=poll)
            except queue.Empty:
                kind, payload = None, None
            now = time.monotonic()
            if probe is not None and now - checked >= GONE_POLL:
                checked = now
                if probe():
                    return
            if kind is None:
                if now - quiet_since >= heartbeat:
                    yield comment("working")  # a write to a closed socket ends the stream too
                    quiet_since = now
                continue
            yield frame(kind, payload)
            quiet_since = now
            if kind != "progress":
                return
    finally:
        progress.cancel()
