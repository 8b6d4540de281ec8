"""Analyses stopped at their time limit or when their client leaves, and what the
analysis worker processes cost.

    PYTHONPATH=. .venv/bin/python bench/limits.py [--quick] [limit] [leave] [responsive] [costs]

Builds bench/out/limits.duckdb (the sample city, plus the New York listings and
Foursquare check-ins from ../shared/data when they are there), runs `citystack
serve` on loopback with the settings each figure needs, prints every figure as
it comes and writes them all to bench/out/limits.json. docs/deploy.md quotes
them. --quick skips the in-thread comparisons (the old behaviour, minutes);
naming steps runs only those (about 6 minutes for all).

Figures:
- limit: CITYSTACK_ANALYSIS_TIME_LIMIT=5 and a run that takes minutes (the
  co-visit network of every Foursquare place, or a Gaussian process with 10
  folds on the NYC listings): seconds to the answer, whether the worker that
  ran it is gone at the answer, and the CPU seconds the server's processes use
  in the second after it;
- leave: the same runs with a long limit, the client closing its connection
  (an event stream after its first progress event, or a plain request): seconds
  from the close until the worker is gone, and CPU in the second after;
- responsive: features requests answered while an analysis runs to its limit,
  under gunicorn's gthread and gevent workers (the waits are cooperative);
- cost: server start, worker start (the forkserver's first, a replacement),
  the per-request overhead of a worker for a tiny analysis, and moving results
  of 1 to 50 MB from a worker, each against the same work in the server thread.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import OUT, Server  # noqa: E402

SHARED = Path(os.environ.get("CITYSTACK_SHARED_DATA", common.ROOT.parent / "shared" / "data"))
DB = OUT / "limits.duckdb"
RESULTS: dict = {}


def say(section: str, name: str, value) -> None:
    RESULTS.setdefault(section, {})[name] = value
    print(f"[{section}] {name}: {json.dumps(value)}", flush=True)


def build() -> None:
    if DB.exists():
        return
    OUT.mkdir(parents=True, exist_ok=True)
    common.cli("init", "--sample", "--db", DB)
    if (SHARED / "AB_NYC_2019.csv").exists():
        common.cli("load", SHARED / "AB_NYC_2019.csv", "--layer", "nyc", "--preset", "airbnb", "--db", DB)
    if (SHARED / "foursquare_nyc_checkins.csv").exists():
        common.cli("load", SHARED / "foursquare_nyc_checkins.csv", "--layer", "fsq", "--preset", "foursquare",
                   "--db", DB)


def long_runs() -> list[tuple[str, dict, str]]:
    """(analysis, query, text of the progress event that starts its long phase)."""
    from citystack.stores import open_store

    layers = {info.name for info in open_store(str(DB)).layers()}
    runs = []
    if "fsq" in layers:
        runs.append(("network", {"layer": "fsq", "min_shared": 1}, "betweenness"))
    if "nyc" in layers:
        runs.append(("interpolate", {"layer": "nyc", "model": "gp", "folds": 10}, "training model 1/"))
    if not runs:  # the sample city: DBSCAN over 20,000 points with a 3 km eps, ~30 s in one library call
        runs.append(("clusters", {"layer": "listings", "method": "dbscan", "eps": 3000}, "clustering"))
    return runs


def health(srv) -> dict:
    return requests.get(srv.url + "/api/health", timeout=30).json()["analyses"]


def gone(pid: int) -> bool:
    fields = common.proc_stat(pid)
    return fields is None or fields[0] in ("Z", "X")


def server_cpu(srv) -> float:
    return srv.cpu_seconds()


class CPU:
    """CPU seconds used by the server's processes since it was made, counting
    processes that end meanwhile (their last reading) and new ones (from 0)."""

    def __init__(self, srv):
        self.srv = srv
        self.first = self._read()
        self.last = dict(self.first)

    def _read(self) -> dict[int, float]:
        return {pid: common.cpu_seconds(pid) for pid in common.descendants(self.srv.proc.pid)}

    def sample(self) -> None:
        self.last.update(self._read())

    def used(self) -> float:
        return sum(v - self.first.get(pid, 0.0) for pid, v in self.last.items())


def after(srv, pid: int | None, t0: float, seconds: float = 1.0) -> dict:
    """From t0: when the worker `pid` was gone, the CPU seconds it used after t0,
    and the CPU seconds of all the server's processes over the next `seconds`
    (a replacement worker's start included)."""
    gone_at = 0.0 if pid is not None and gone(pid) else None
    cpu = CPU(srv)
    while time.perf_counter() - t0 < seconds:
        if pid is not None and gone_at is None and gone(pid):
            gone_at = time.perf_counter() - t0
        cpu.sample()
        time.sleep(0.02)
    cpu.sample()
    if pid is not None and gone_at is None and gone(pid):
        gone_at = time.perf_counter() - t0
    out = {"server_cpu_s_in_next_s": round(cpu.used(), 2)}
    if pid is not None:
        out["worker_gone_after_s"] = None if gone_at is None else round(gone_at, 3)
        out["worker_cpu_s_after"] = round(cpu.last.get(pid, 0.0) - cpu.first.get(pid, 0.0), 2)
    return out


def busy_for(srv, since: float, limit: float = 180.0) -> float | None:
    """Seconds from `since` until the server's processes stop using CPU (less than
    5% of a core over 0.5 s), or None if they are still busy after `limit`."""
    while time.perf_counter() - since < limit:
        cpu = CPU(srv)
        time.sleep(0.5)
        cpu.sample()
        if cpu.used() < 0.025:
            return round(time.perf_counter() - since - 0.5, 2)
    return None


def get(srv, name, query, timeout=300, **kw):
    return requests.get(f"{srv.url}/api/analyses/{name}", params=query, timeout=timeout, **kw)


def raw_get(srv, name, query, headers: str = "") -> socket.socket:
    """The request on a plain socket, closed when the caller says."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=300)
    path = f"/api/analyses/{name}?" + "&".join(f"{k}={v}" for k, v in query.items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    return sock


# --- the time limit --------------------------------------------------------------------------------

# The minute-long runs need more memory than the default bound allows the network of every place.
LONG = {"CITYSTACK_ANALYSIS_SLOTS": "1", "CITYSTACK_CACHE_BYTES": "0", "CITYSTACK_ANALYSIS_MAX_BYTES": "2000000000"}


def time_limit(compare: bool) -> None:
    env = {**LONG, "CITYSTACK_ANALYSIS_TIME_LIMIT": "5"}
    modes = [("worker", {})] + ([("in-thread", {"CITYSTACK_ANALYSIS_PROCESSES": "0"})] if compare else [])
    for mode, extra in modes:
        with Server(DB, workers=1, env={**env, **extra}) as srv:
            for name, query, _ in long_runs():
                workers = health(srv).get("workers", [None])
                t0 = time.perf_counter()
                r = get(srv, name, query)
                answered = time.perf_counter()
                out = {"status": r.status_code, "error": r.json().get("error"),
                       "answer_s": round(answered - t0, 2), **after(srv, workers[0], answered)}
                if mode == "in-thread":
                    out["server_busy_after_answer_s"] = busy_for(srv, answered)
                say(f"limit 5 s, {mode}", f"{name} {query}", out)


# --- the client leaves -----------------------------------------------------------------------------

def leave(compare: bool) -> None:
    env = {**LONG, "CITYSTACK_ANALYSIS_TIME_LIMIT": "600"}
    modes = [("worker", {})] + ([("in-thread", {"CITYSTACK_ANALYSIS_PROCESSES": "0"})] if compare else [])
    for mode, extra in modes:
        with Server(DB, workers=1, env={**env, **extra}) as srv:
            for name, query, marker in long_runs():
                [pid] = health(srv).get("workers", [None])
                sock = raw_get(srv, name, query, "Accept: text/event-stream\r\n")
                seen = b""
                while marker.encode() not in seen:
                    seen += sock.recv(65536)
                time.sleep(1.0)  # well inside the long phase
                sock.close()  # (a plain socket: requests closes a stream as soon as a loop over it stops)
                closed = time.perf_counter()
                out = after(srv, pid, closed)
                if mode == "in-thread":
                    out["server_busy_after_close_s"] = busy_for(srv, closed)
                say(f"client leaves a stream, {mode}", f"{name} {query}", out)
                if mode == "worker":  # a plain request too: nothing written until the answer
                    [pid] = health(srv)["workers"]
                    sock = raw_get(srv, name, query)
                    deadline = time.monotonic() + 60
                    while health(srv).get("running", 0) == 0 and time.monotonic() < deadline:
                        time.sleep(0.05)
                    time.sleep(1.0)
                    sock.close()
                    closed = time.perf_counter()
                    say(f"client leaves a plain request, {mode}", f"{name} {query}", after(srv, pid, closed))
                while health(srv).get("running", 0):  # in-thread: let the abandoned run end
                    time.sleep(0.5)


# --- costs -----------------------------------------------------------------------------------------

def payload(n: int, progress) -> dict:
    """A result of n random floats (about 19 bytes each as JSON)."""
    return {"values": np.random.default_rng(0).random(n)}


class Gunicorn(Server):
    """gunicorn itself with a given worker class, serving citystack.app:create_app()."""

    def __init__(self, db, worker_class: str, env: dict | None = None):
        import subprocess

        self.port = common.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        OUT.mkdir(parents=True, exist_ok=True)
        self.log_path = OUT / f"gunicorn-{self.port}.log"
        self.log = open(self.log_path, "w+")
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.proc = subprocess.Popen([gunicorn, "-k", worker_class, "-w", "1", "--threads", "32", "-b",
                                      f"127.0.0.1:{self.port}", "citystack.app:create_app()"],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=common.ROOT,
                                     env={**os.environ, "CITYSTACK_DB": str(db), **(env or {})})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/api/layers", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not start: {self.output()[-2000:]}")


def responsive() -> None:
    """Features requests while a slow analysis runs, under gunicorn's threaded and gevent workers."""
    name, query, _ = long_runs()[0]
    window = {"bbox": "114.05,22.54,114.06,22.55", "limit": 100}
    for worker_class in ("gthread", "gevent"):
        with Gunicorn(DB, worker_class, env={**LONG, "CITYSTACK_ANALYSIS_TIME_LIMIT": "5"}) as srv:
            import threading

            slow = threading.Thread(target=get, args=(srv, name, query), daemon=True)
            slow.start()
            time.sleep(0.5)
            session, times = requests.Session(), []
            while slow.is_alive():
                t = time.perf_counter()
                assert session.get(srv.url + "/api/layers/listings/features", params=window, timeout=30).ok
                times.append(time.perf_counter() - t)
                time.sleep(0.01)
            say("features while an analysis runs to its 5 s limit", worker_class,
                {"n": len(times), "p50_ms": round(1000 * statistics.median(times), 1),
                 "p99_ms": round(1000 * float(np.percentile(times, 99)), 1), "max_ms": round(1000 * max(times), 1)})


def costs() -> None:
    for mode, extra in (("worker", {}), ("in-thread", {"CITYSTACK_ANALYSIS_PROCESSES": "0"})):
        t0 = time.perf_counter()
        with Server(DB, workers=1, env={"CITYSTACK_CACHE_BYTES": "0", **extra}) as srv:
            say("server start", mode, {"seconds_to_first_answer": round(time.perf_counter() - t0, 2)})
            tiny = {"layer": "listings", "cells": 4, "bbox": "114.05,22.54,114.052,22.542"}
            for _ in range(5):
                get(srv, "heatmap", tiny)
            times = []
            for _ in range(40):
                t = time.perf_counter()
                assert get(srv, "heatmap", tiny).status_code == 200
                times.append(time.perf_counter() - t)
            say("tiny heatmap over HTTP (cache off), median of 40", mode,
                {"ms": round(1000 * statistics.median(times), 2), "p90_ms": round(1000 * np.percentile(times, 90), 2)})
            layer = "nyc" if "nyc" in {i["name"] for i in requests.get(srv.url + "/api/layers").json()["layers"]} \
                else "listings"
            big = {"layer": layer, "cells": 400, "bandwidth": 100}
            times, size = [], 0
            for _ in range(5):
                t = time.perf_counter()
                r = get(srv, "heatmap", big)
                times.append(time.perf_counter() - t)
                size, seconds = len(r.content), r.json()["seconds"]
            say("400-cell heatmap over HTTP (cache off), median of 5", mode,
                {"ms": round(1000 * statistics.median(times), 1), "analysis_ms": round(1000 * seconds, 1),
                 "body_MB": round(size / 1e6, 2)})
    pool_costs()


def pool_costs() -> None:
    """The pool on its own, in this process: worker start, a round trip, results of 1-50 MB."""
    from citystack.analyses import pool as pools
    from citystack.analyses.runner import Task
    from citystack.analyses.worker import to_json
    from citystack.events.progress import Progress
    from citystack.settings import Settings

    pool = pools.Pool(Settings(db=str(DB)), 1)
    t = time.perf_counter()
    pool.start()
    first = time.perf_counter() - t
    pool.run(0, Task(payload, (1,)), Progress())
    say("worker start", "forkserver's first (its imports)", {"seconds": round(first, 2)})
    say("idle worker memory", "resident / proportional (pages shared with the forkserver count in part)",
        memory(pool.workers[0].pid))
    starts = []
    for _ in range(5):
        t = time.perf_counter()
        pool._replace(0, pool.workers[0])
        pool.run(0, Task(payload, (1,)), Progress())
        starts.append(time.perf_counter() - t)
    say("worker start", "a replacement (kill, fork, open the store, first job)",
        {"ms_median": round(1000 * statistics.median(starts), 1)})
    trips = []
    for _ in range(50):
        t = time.perf_counter()
        pool.run(0, Task(payload, (1,)), Progress())
        trips.append(time.perf_counter() - t)
    say("round trip of an empty job", "worker", {"ms_median": round(1000 * statistics.median(trips), 2)})
    for n in (50_000, 500_000, 2_500_000):
        t = time.perf_counter()
        body = to_json(payload(n, None))
        in_thread = time.perf_counter() - t
        t = time.perf_counter()
        pool.run(0, Task(payload, (n,)), Progress())  # the JSON, as the server sends it on unparsed
        via_worker = time.perf_counter() - t
        say("result transfer", f"{len(body) / 1e6:.1f} MB", {
            "in_thread_compute_serialize_ms": round(1000 * in_thread, 1),
            "worker_compute_serialize_send_ms": round(1000 * via_worker, 1)})
    pool.close()


def memory(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss"):
                out[f"{key.lower()}_MB"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    only = [a for a in sys.argv[1:] if not a.startswith("--")] or ["limit", "leave", "responsive", "costs"]
    build()
    RESULTS["machine"] = common.machine()
    RESULTS["load_average_at_start"] = os.getloadavg()[0]
    started = time.perf_counter()
    steps = {"limit": lambda: time_limit(compare=not quick), "leave": lambda: leave(compare=not quick),
             "responsive": responsive, "costs": costs}
    for name in only:
        steps[name]()
    RESULTS["load_average_at_end"] = os.getloadavg()[0]
    RESULTS["seconds"] = round(time.perf_counter() - started, 1)
    path = OUT / "limits.json"
    earlier = json.loads(path.read_text()) if path.exists() and len(only) < len(steps) else {}
    path.write_text(json.dumps({**earlier, **RESULTS}, indent=2))  # a partial run updates its sections
    print(f"wrote {OUT / 'limits.json'}")


if __name__ == "__main__":
    main()
