"""The analysis worker process: runs the units of work its server process sends.

:mod:`.pool` starts each worker with the 'forkserver' start method (or
'spawn' where there is none), never a plain fork of the server. The worker
opens its own store from the settings and serves one job at a time from its
job pipe. A job is a :class:`~.runner.Task` (a module-level function and its
arguments) and the seconds left before its time limit. While it runs, its
progress calls travel back over the message pipe, then its result as JSON in
byte chunks, or its exception. The server stops a job by killing the worker,
so nothing here has to poll for that; the time limit given is only a
backstop for a server that could not.

Messages to the server, each one pickled tuple:

* ``("ready", pid)`` once, when the worker can take jobs;
* ``("progress", [(message, fraction), ...])``, calls made close together;
* ``("result", data_version, nbytes, retire)``, then the JSON in chunks of
  at most CHUNK bytes (``retire``: the worker grew past its memory bound and
  exits now; the server starts another);
* ``("error", exception_class, args, state, traceback_text)``.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import traceback

import numpy as np
import orjson

from ..events.progress import Progress
from ..stores import open_store
from . import registry

CHUNK = 1 << 20  # bytes of result per pipe message
RELAY_EVERY = 0.05  # seconds progress calls may wait to travel together
BACKSTOP = 2.0  # seconds past its time limit at which a job stops itself if the server has not killed it
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def main(settings, jobs, out) -> None:
    """The worker's life: open the store, then serve jobs until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server decides
    _exit_with_parent()
    registry.load(settings.plugins.split(",") if settings.plugins else ())
    worker = _Worker(settings, out)
    out.send(("ready", os.getpid()))
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return
        if job is None or not worker.run(*job):
            return


class _Worker:
    def __init__(self, settings, out):
        # One query at a time here, and no in-memory point index (that serves
        # the features API of the server process, not analyses).
        self.settings = settings.replace(memory_index_rows=0, pg_pool=2)
        self.out = out
        self.store = None
        self.retire_above = 2 * settings.analysis_max_bytes + _rss()  # bytes of memory kept between jobs
        try:  # open it now, so that the first job does not wait; a failure is retried per job
            self.store = open_store(self.settings.db, self.settings)
        except Exception:  # noqa: BLE001 - reported by the first job that needs the store
            self.store = None

    def run(self, task, time_limit) -> bool:
        """Run one job and answer it; False when the worker should exit."""
        relay = _Relay(self.out)
        progress = Progress(relay, None if time_limit is None else max(0.0, time_limit) + BACKSTOP)
        try:
            version = None
            if task.store:
                if self.store is None:
                    self.store = open_store(self.settings.db, self.settings)
                version = self.store.data_version()
            body = to_json(task(self.store, progress))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the server
            relay.close(("error", *_portable(exc)))
            return True
        retire = _rss() > self.retire_above
        relay.close(("result", version, len(body), retire))
        view = memoryview(body)
        for start in range(0, len(body), CHUNK):
            self.out.send_bytes(view, start, min(CHUNK, len(body) - start))
        return not retire


class _Relay:
    """A job's progress calls to the server, a few at a time: a call is sent at
    once when nothing was sent in the last RELAY_EVERY seconds, else held and
    sent with the next call after that, by a timer, or before the result. So a
    job of a few milliseconds wakes the server once or twice, not at every call
    (each wake-up costs about a millisecond on a busy machine)."""

    def __init__(self, out):
        self.out = out
        self.pending: list[tuple[str, float | None]] = []
        self.sent = 0.0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.timer = threading.Thread(target=self._tick, name="citystack-progress", daemon=True)
        self.timer.start()

    def __call__(self, message: str, fraction: float | None = None) -> None:
        with self.lock:
            self.pending.append((message, fraction))
            if time.monotonic() - self.sent >= RELAY_EVERY:
                self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.out.send(("progress", self.pending))
            self.pending = []
            self.sent = time.monotonic()

    def _tick(self) -> None:
        while not self.done.wait(RELAY_EVERY):
            with self.lock:
                if self.pending and time.monotonic() - self.sent >= RELAY_EVERY:
                    self._flush()

    def close(self, last: tuple) -> None:
        """Send what is held, then `last` (the result's header or the error)."""
        self.done.set()
        with self.lock:
            self._flush()
            self.out.send(last)


def _portable(exc: BaseException) -> tuple:
    """(class, args, state, traceback) of an exception, in a form that pickles."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    state = {k: v for k, v in vars(exc).items() if not k.startswith("__")}
    try:
        pickle.dumps((type(exc), exc.args, state))
        return type(exc), exc.args, state, text
    except Exception:  # noqa: BLE001 - an exception that does not pickle: its text
        return RuntimeError, (f"{type(exc).__name__}: {exc}",), {}, text


def to_json(value) -> bytes:
    """A result as JSON: numpy arrays and scalars as lists and numbers, NaN as null."""
    return orjson.dumps(value, option=JSON_OPTIONS, default=_json_default)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _rss() -> int:
    """Resident memory of this process in bytes (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _exit_with_parent() -> None:
    """Exit when the process that started this one goes (the forkserver goes
    with its server process): a server killed outright leaves no worker behind."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="citystack-parent-watch", daemon=True).start()
