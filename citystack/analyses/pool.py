"""Worker processes for analyses, as their server process sees them.

A :class:`Pool` keeps one warm worker process (:mod:`.worker`) per analysis
slot. A job goes to its slot's worker over a pipe; the server process then
waits for the worker's messages in short steps, relaying progress to the
request's Progress and checking between steps whether the client has gone
or the time limit has passed. Either ends the job at once: the worker is
terminated (SIGTERM, then SIGKILL) and a fresh one started in its place, so
even a library call that never returns to Python (a scikit-learn fit,
DBSCAN, networkx) stops within a step of the limit.

Waiting is cooperative: ``multiprocessing.connection.wait`` (select/poll,
which gevent patches) with a timeout, never a blocking ``recv`` on a pipe
that has nothing to read, and no lock held while waiting. So under gevent's
monkey-patching a waiting analysis holds a greenlet, not the process.

Workers are started with the 'forkserver' method where there is one: a
small server process imports numpy, scikit-learn and the analyses once, and
each worker is forked from it (milliseconds, pages shared), not from the
server process with its threads, sockets and database connections.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from multiprocessing.connection import wait

from ..events.progress import Progress
from . import worker as worker_module
from .registry import BUILTIN

log = logging.getLogger("citystack")

START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
# Imported once by the forkserver (in the background, while the server
# process does its own imports) and shared by every worker forked from it.
PRELOAD = ["citystack.analyses.worker", *(f"citystack.analyses.{m}" for m in BUILTIN),
           "citystack.stores.duckdb", "citystack.stores.postgis"]
STEP = 0.1  # seconds between looks at the client and the clock while a job runs
TERM_GRACE = 0.5  # seconds between SIGTERM and SIGKILL
PIPE_BYTES = 1 << 20  # the result pipe's buffer
STARTUP_ALLOWANCE = 60.0  # seconds a new worker may take to start before its job's time limit runs on


class WorkerDied(RuntimeError):
    """The worker process ended in the middle of a job (killed from outside, out of memory)."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, as its text."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def context():
    ctx = multiprocessing.get_context(START_METHOD)
    if START_METHOD == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm() -> None:
    """Start the forkserver now (it imports the analyses in the background), so
    that the first worker starts in milliseconds. Does not wait."""
    if START_METHOD == "forkserver":
        context()
        from multiprocessing import forkserver

        forkserver.ensure_running()


class Worker:
    """One worker process and its two one-way pipes (plain OS pipes: blocking
    file descriptors whatever the server's socket module is)."""

    def __init__(self, ctx, settings):
        job_r, self.jobs = ctx.Pipe(duplex=False)
        self.messages, msg_w = ctx.Pipe(duplex=False)
        _widen(msg_w)
        self.process = ctx.Process(target=worker_module.main, args=(settings, job_r, msg_w),
                                   name="citystack-analysis", daemon=True)
        self.process.start()
        job_r.close()
        msg_w.close()
        self.pid = self.process.pid
        self.ready = False  # its "ready" message has been read

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL) and reap; waits at most a few
        seconds, cooperatively."""
        proc = self.process
        if proc.is_alive():
            proc.terminate()
            if not wait([proc.sentinel], TERM_GRACE):
                proc.kill()
                wait([proc.sentinel], 5.0)
        proc.join(0.1)
        for conn in (self.jobs, self.messages):
            conn.close()


class Pool:
    """One worker per slot, started by :meth:`start` (or on first use) and
    replaced when stopped."""

    def __init__(self, settings, size: int):
        self.settings = settings
        self.ctx = context()
        self.workers: list[Worker | None] = [None] * size
        self.started = 0
        self._lock = threading.Lock()  # held only to swap list entries, never across a wait

    def start(self) -> None:
        """Start every slot's worker now. The first start waits for the
        forkserver's imports (seconds, once per server process): done when
        the app is made, before it serves, so that no request waits for it."""
        for slot, w in enumerate(self.workers):
            if w is None:
                self._start(slot)

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w is not None]

    def run(self, slot: int, task, progress: Progress) -> tuple[str | None, bytes]:
        """Run `task` in the slot's worker: (the data version it read, its result as JSON).

        Raises what the task raised; Cancelled or TimeLimit when the request's
        progress says so, after stopping the worker.
        """
        started = time.monotonic()
        w = self._worker(slot)
        try:
            outcome = self._exchange(w, task, progress, started)
        except BaseException:
            self._replace(slot, w)  # the job's state is unknown: a fresh worker
            raise
        if isinstance(outcome, BaseException):  # the task's own exception: the worker is fine
            raise outcome
        version, body, retire = outcome
        if retire:
            self._replace(slot, w)
        return version, body

    def _exchange(self, w: Worker, task, progress: Progress, started: float):
        if not w.ready:  # a new worker: wait until it reads jobs, so that sending never blocks
            # Its start-up (a fork, opening the store; the forkserver's imports
            # the first time) is not charged to the job's time limit.
            if progress.deadline is not None:
                progress.deadline += STARTUP_ALLOWANCE
            try:
                while not w.ready:
                    w.ready = self._next(w, progress)[0] == "ready"
            finally:
                if progress.deadline is not None:
                    progress.deadline -= STARTUP_ALLOWANCE - (time.monotonic() - started)
        w.jobs.send((task, progress.remaining()))
        while True:
            message = self._next(w, progress)
            kind = message[0]
            if kind == "progress":
                for text, fraction in message[1]:
                    progress(text, fraction)
            elif kind == "result":
                _, version, size, retire = message
                return version, self._receive(w, size, progress), retire
            elif kind == "error":
                return _rebuild(*message[1:])

    def _next(self, w: Worker, progress: Progress):
        """The worker's next message, waiting in steps; between steps the
        request's progress is checked (client gone, time limit)."""
        while True:
            progress.check()
            left = progress.remaining()
            step = STEP if left is None else max(0.0, min(STEP, left))
            ready = wait([w.messages, w.process.sentinel], step)
            if w.messages in ready:
                try:
                    return w.messages.recv()
                except (EOFError, OSError):
                    raise self._died(w) from None
            if ready:  # only the sentinel: the process is gone and said nothing more
                raise self._died(w)

    @staticmethod
    def _died(w: Worker) -> WorkerDied:
        if not w.ready:
            return WorkerDied(f"the analysis worker (pid {w.pid}) did not start; its error is in the "
                              "server's log (a script that starts citystack in-process must keep its own "
                              "code under `if __name__ == '__main__':`, as multiprocessing requires)")
        return WorkerDied(f"the analysis worker (pid {w.pid}) ended during the job (exit code "
                          f"{w.process.exitcode}: killed from outside, or out of memory?)")

    def _receive(self, w: Worker, size: int, progress: Progress) -> bytes:
        chunks, got = [], 0
        while got < size:
            progress.check()
            if not wait([w.messages], STEP):
                continue
            try:
                chunk = w.messages.recv_bytes()
            except (EOFError, OSError):
                raise WorkerDied(f"the analysis worker (pid {w.pid}) ended while sending its result") from None
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _worker(self, slot: int) -> Worker:
        w = self.workers[slot]
        if w is None or not w.alive():
            if w is not None:
                w.stop()
            w = self._start(slot)
        return w

    def _start(self, slot: int) -> Worker:
        w = Worker(self.ctx, self.settings)
        with self._lock:
            self.workers[slot] = w
            self.started += 1
        return w

    def _replace(self, slot: int, w: Worker) -> None:
        w.stop()
        try:
            self._start(slot)
        except Exception:  # noqa: BLE001 - the next job tries again
            log.exception("could not start an analysis worker")
            with self._lock:
                self.workers[slot] = None

    def close(self) -> None:
        for slot, w in enumerate(self.workers):
            if w is not None:
                try:
                    w.jobs.send(None)
                except OSError:
                    pass
                w.stop()
                self.workers[slot] = None


def _widen(conn) -> None:
    """A 1 MB pipe buffer where Linux allows it (64 kB by default): a result
    crosses in a few large writes instead of many small ones."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):
        pass


def _rebuild(cls, args, state, text) -> BaseException:
    """The exception a worker raised, as an exception of the same class here."""
    try:
        exc = cls.__new__(cls, *args)
        exc.args = tuple(args)
        exc.__dict__.update(state)
    except Exception:  # noqa: BLE001 - a class that cannot be rebuilt: its text
        exc = RuntimeError(f"{getattr(cls, '__name__', cls)}: {args}")
    exc.__cause__ = RemoteTraceback(text)
    return exc
