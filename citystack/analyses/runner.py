"""Running an analysis: input from the store, a result cache, a concurrency cap.

Results are cached under the database's data version (which every process
can read, and which changes with every load), the layer, the view and the
parameters: an identical request is answered from memory, and new data is
never answered with an old result.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from ..events.progress import Cancelled, Progress, TimeLimit
from ..stores.base import Store, View
from .registry import REGISTRY, Analysis, BadParam, Input


class ResultCache:
    def __init__(self, size: int):
        self.size = size
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class Runner:
    """Runs analyses for one process; at most `slots` at a time, so that
    analyses never take every server thread from the features API."""

    def __init__(self, store: Store, max_points: int, cache_entries: int = 64, slots: int = 2):
        self.store = store
        self.max_points = max_points
        self.cache = ResultCache(cache_entries)
        self._slots = threading.BoundedSemaphore(slots)
        self.counts = collections.Counter()  # running, completed, cancelled, timed_out, failed
        self._count_lock = threading.Lock()

    def _count(self, key: str, delta: int = 1) -> None:
        with self._count_lock:
            self.counts[key] += delta

    def prepare(self, name: str, layer: str, raw: dict) -> tuple[Analysis, Any, dict]:
        """Check everything a request can get wrong, before any work starts."""
        if name not in REGISTRY:
            raise BadParam("name", f"no analysis named {name!r} (analyses: {', '.join(sorted(REGISTRY))})")
        analysis = REGISTRY[name]
        info = self.store.layer(layer)
        if info.kind not in analysis.kinds:
            raise BadParam("layer", f"{name} works on {' or '.join(analysis.kinds)} layers; "
                                    f"{layer!r} is a {info.kind} layer")
        return analysis, info, analysis.parse(raw, info)

    def run(self, analysis: Analysis, info, view: View, params: dict, progress: Progress) -> dict:
        key = (self.store.data_version(), analysis.name, info.name, view.key(),
               tuple(sorted(params.items())))
        cached = self.cache.get(key)
        if cached is not None:
            progress("served from cache", 1.0)
            return {**cached, "cached": True}
        while not self._slots.acquire(timeout=0.5):
            progress("waiting for a free analysis slot", 0.0)
        self._count("running")
        outcome = "failed"
        try:
            started = time.perf_counter()
            progress(f"starting {analysis.name}", 0.0)
            data = Input(self.store, info, view, self.max_points)
            if data.sampled:
                progress(f"{data.count} points in view; sampling {self.max_points}", 0.02)
            result = analysis.run(data, params, progress)
            result.setdefault("input", data.info())
            result.update({"analysis": analysis.name, "params": params,
                           "seconds": round(time.perf_counter() - started, 4), "cached": False})
            outcome = "completed"
        except Cancelled:
            outcome = "cancelled"
            raise
        except TimeLimit:
            outcome = "timed_out"
            raise
        finally:
            self._slots.release()
            self._count("running", -1)
            self._count(outcome)
        self.cache.put(key, result)
        progress("idle", 1.0)
        return result
