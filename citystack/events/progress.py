"""Progress events of long work, their stream, and cancellation.

Long work takes a :class:`Progress` and calls it now and then with a status
line. Each call is also a cancellation point: when the client has gone away
or the time limit has passed, the call raises and the work unwinds.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterator

from .sse import comment, frame


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

    def __call__(self, message: str, fraction: float | None = None) -> None:
        self.check()
        self.messages.append(message)
        if self._on_event is not None:
            self._on_event(message, fraction)

    def check(self) -> None:
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

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


def stream(work: Callable[[Progress], Any], on_error: Callable[[BaseException], dict],
           time_limit: float | None = None, heartbeat: float = 10.0,
           probe: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """Run `work` in a thread and yield its progress, then a result or error event.

    If the consumer stops iterating (the client disconnected and the server
    closed the generator), or `probe` finds the client gone, the work is
    cancelled at its next progress call.
    """
    events: queue.Queue = queue.Queue()
    progress = Progress(lambda m, f: events.put(("progress", {"message": m, "fraction": f})), time_limit,
                        probe)

    def run():
        try:
            events.put(("result", work(progress)))
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an error event
            events.put(("error", on_error(exc)))

    thread = threading.Thread(target=run, name="citystack-work", daemon=True)
    thread.start()
    try:
        yield comment("started")
        while True:
            try:
                kind, payload = events.get(timeout=heartbeat)
            except queue.Empty:
                yield comment("working")  # a write to a closed socket ends the stream
                continue
            yield frame(kind, payload)
            if kind != "progress":
                return
    finally:
        progress.cancel()
