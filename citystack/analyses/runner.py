"""Running an analysis: input from the store, a result cache, slots, a queue,
and worker processes that can be stopped.

Every piece of analysis work, the registered analyses and the 2015
``/getData/`` grids alike, goes through :meth:`Runner.call`:

1. the result cache, keyed by the database's data version (which every
   process can read, and which changes with every load), so an identical
   request is answered from memory and new data never gets an old result;
   it is bounded in bytes of serialized result (least recently used out);
2. a slot: at most ``analysis_slots`` pieces of work run at once in a server
   process, at most ``analysis_queue`` more wait for one, and any beyond are
   refused at once with :class:`Busy` (503 + Retry-After);
3. the slot's worker process (:mod:`.pool`), which is killed when the time
   limit passes or the client leaves, whatever the work is doing. With
   ``analysis_processes=0`` the work runs in the calling thread instead and
   stops only at its own progress calls.
"""

from __future__ import annotations

import collections
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from ..events.progress import Cancelled, Progress, TimeLimit
from ..stores.base import Store, View
from . import pool as pools
from .worker import to_json
from .registry import REGISTRY, Analysis, BadParam, Input

WAIT_STEP = 0.05  # seconds between looks at a free slot while queued
WAIT_REPORT = 1.0  # seconds between "waiting for a free analysis slot" messages


class Busy(Exception):
    """Every analysis slot of this server process is taken and its queue is full."""

    def __init__(self, detail: str, retry_after: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class Task:
    """A unit of analysis work: a module-level function (so that it pickles by
    name) called as ``fn(*args, progress)``, or ``fn(store, *args, progress)``
    with `store`. Its arguments travel to the worker by pickle, its result
    back as JSON."""

    fn: Callable
    args: tuple = ()
    store: bool = False

    def __call__(self, store, progress):
        return self.fn(*((store,) if self.store else ()), *self.args, progress)


def execute(store: Store, name: str, layer: str, view: View, params: dict, max_points: int,
            max_bytes: int | None, progress) -> dict:
    """One registered analysis over a view: the work a Task of :meth:`Runner.run` does."""
    analysis = REGISTRY[name]
    info = store.layer(layer)
    started = time.perf_counter()
    progress(f"starting {name}", 0.0)
    data = Input(store, info, view, max_points, max_bytes=max_bytes)
    if data.sampled:
        progress(f"{data.count} points in view; sampling {max_points}", 0.02)
    result = analysis.run(data, params, progress)
    result.setdefault("input", data.info())
    result.pop("cached", None)  # last, so that a cached copy is marked without parsing it (_marked)
    result.update({"analysis": name, "params": params,
                   "seconds": round(time.perf_counter() - started, 4), "cached": False})
    return result


class ResultCache:
    """Serialized results, at most `max_bytes` of them, least recently used out."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self.bytes = 0
        self._items: collections.OrderedDict[Any, bytes] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return  # larger than the whole cache: not kept
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            self._items[key] = body
            self.bytes += len(body)
            while self.bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.bytes -= len(dropped)


class Slots:
    """`size` slots handed out first come, first served; at most `queue`
    requests wait for one. No lock is held while waiting (a short sleep
    between looks, cooperative under gevent)."""

    def __init__(self, size: int, queue: int):
        self.size, self.queue = max(1, int(size)), max(0, int(queue))
        self._free = list(range(self.size))
        self._waiting: collections.deque = collections.deque()
        self._lock = threading.Lock()

    def full(self) -> bool:
        with self._lock:
            return not self._free and len(self._waiting) >= self.queue

    def acquire(self, progress: Progress) -> int:
        with self._lock:
            if self._free and not self._waiting:
                return self._free.pop()
            if len(self._waiting) >= self.queue:
                raise Busy(f"all {self.size} analysis slots of this server process are busy and "
                           f"{len(self._waiting)} more analyses wait (CITYSTACK_ANALYSIS_SLOTS, "
                           "CITYSTACK_ANALYSIS_QUEUE); try again shortly")
            ticket = object()
            self._waiting.append(ticket)
        try:
            reported = 0.0
            while True:
                with self._lock:
                    if self._free and self._waiting[0] is ticket:
                        self._waiting.popleft()
                        return self._free.pop()
                now = time.monotonic()
                if now - reported >= WAIT_REPORT:
                    reported = now
                    progress("waiting for a free analysis slot", 0.0)
                else:
                    progress.check()
                time.sleep(WAIT_STEP)
        except BaseException:
            with self._lock:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
            raise

    def release(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)


class Runner:
    """Runs analyses for one server process (see the module's description)."""

    def __init__(self, store: Store, settings, processes: bool | None = None):
        self.store = store
        self.settings = settings
        self.max_points = settings.analysis_max_points
        self.max_bytes = settings.analysis_max_bytes
        self.cache = ResultCache(settings.cache_bytes)
        self.slots = Slots(settings.analysis_slots, settings.analysis_queue)
        self.counts = collections.Counter()  # running, completed, cancelled, timed_out, failed, cached, busy
        self._count_lock = threading.Lock()
        use_processes = settings.analysis_processes if processes is None else processes
        self.pool = None
        if use_processes:
            # The workers open the store this runner was given, wherever the settings point.
            where = getattr(store, "path", None) or getattr(store, "url", None) or settings.db
            self.pool = pools.Pool(settings.replace(db=where), self.slots.size)
            self.pool.start()
            weakref.finalize(self, self.pool.close)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def _count(self, key: str, delta: int = 1) -> None:
        with self._count_lock:
            self.counts[key] += delta

    def status(self) -> dict:
        """Counts of outcomes, and the worker processes' ids."""
        with self._count_lock:
            out: dict[str, Any] = dict(self.counts)
        if self.pool is not None:
            out["workers"] = self.pool.pids()
            out["workers_started"] = self.pool.started
        return out

    # -- registered analyses -------------------------------------------------

    def prepare(self, name: str, layer: str, raw: dict) -> tuple[Analysis, Any, dict]:
        """Check everything a request can get wrong, before any work starts."""
        if name not in REGISTRY:
            raise BadParam("name", f"no analysis named {name!r} (analyses: {', '.join(sorted(REGISTRY))})")
        analysis = REGISTRY[name]
        info = self.store.layer(layer)
        if info.kind not in analysis.kinds:
            raise BadParam("layer", f"{name} works on {' or '.join(analysis.kinds)} layers; "
                                    f"{layer!r} is a {info.kind} layer")
        from .privacy import apply  # the thresholds in force: the request's or the server's, the larger

        return analysis, info, apply(analysis.parse(raw, info), info, self.settings)

    def _key(self, analysis: Analysis, info, view: View, params: dict) -> tuple:
        return ("analysis", analysis.name, info.name, view.key(), tuple(sorted(params.items())))

    def admit(self, analysis: Analysis, info, view: View, params: dict) -> None:
        """Busy now, before a response starts, when the work would have to
        queue and the queue is full (a cached result is always served)."""
        if self.slots.full() and self.cache.get((self.store.data_version(), *self._key(
                analysis, info, view, params))) is None:
            self._count("busy")
            raise Busy("all analysis slots of this server process are busy and its queue is full "
                       "(CITYSTACK_ANALYSIS_SLOTS, CITYSTACK_ANALYSIS_QUEUE); try again shortly")

    def run(self, analysis: Analysis, info, view: View, params: dict, progress: Progress) -> dict:
        """The result of a registered analysis (see :meth:`run_json`)."""
        return orjson.loads(self.run_json(analysis, info, view, params, progress))

    def run_json(self, analysis: Analysis, info, view: View, params: dict, progress: Progress) -> bytes:
        """The result of a registered analysis as JSON, ready to send: the server
        process never parses what a worker computed."""
        task = Task(execute, (analysis.name, info.name, view, params, self.max_points, self.max_bytes),
                    store=True)
        body, cached = self._call(self._key(analysis, info, view, params), task, progress)
        if cached:
            return _marked(body)
        progress("idle", 1.0)
        return body

    # -- any unit of work ----------------------------------------------------

    def call(self, key: tuple, task: Task, progress: Progress, version: str | None = None) -> Any:
        """The result of `task`, cached under `key` and the data version (read
        now unless given: pass the version read before the task's inputs were)."""
        return orjson.loads(self.call_json(key, task, progress, version))

    def call_json(self, key: tuple, task: Task, progress: Progress, version: str | None = None) -> bytes:
        """:meth:`call`, its result as JSON (embed it with ``orjson.Fragment``)."""
        return self._call(key, task, progress, version)[0]

    def _call(self, key: tuple, task: Task, progress: Progress, version: str | None = None) -> tuple[bytes, bool]:
        version = version or self.store.data_version()
        full_key = (version, *key)
        body = self.cache.get(full_key)
        if body is not None:
            self._count("cached")
            progress("served from cache", 1.0)
            return body, True
        try:
            slot = self.slots.acquire(progress)
        except Busy:
            self._count("busy")
            raise
        self._count("running")
        outcome = "failed"
        try:
            if self.pool is not None:
                read, body = self.pool.run(slot, task, progress)
            else:
                read = self.store.data_version() if task.store else None
                body = to_json(task(self.store, progress))
            outcome = "completed"
        except Cancelled:
            outcome = "cancelled"
            raise
        except TimeLimit:
            outcome = "timed_out"
            raise
        finally:
            self.slots.release(slot)
            self._count("running", -1)
            self._count(outcome)
        if read is None or read == version:  # computed on the data the key names
            self.cache.put(full_key, body)
        return body, False


def _marked(body: bytes) -> bytes:
    """A cached analysis result with ``"cached": true``: :func:`execute` puts the
    flag last, so only the end of the JSON changes."""
    end = b'"cached":false}'
    if body.endswith(end):
        return body[:-len(b"false}")] + b"true}"
    return to_json({**orjson.loads(body), "cached": True})
