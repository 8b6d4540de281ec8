"""The features API: latency in-process and over HTTP, and throughput with wrk."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from resource import RUSAGE_CHILDREN, RUSAGE_SELF, getrusage
from urllib.parse import urlencode

import orjson
import requests

from common import OUT, stats_ms

PROPS = ["name", "price"]
LUA = Path(__file__).with_name("windows.lua")


def features_path(layer: str, bbox) -> str:
    return f"/api/layers/{layer}/features?" + urlencode({"bbox": ",".join(map(repr, bbox)),
                                                        "properties": ",".join(PROPS)})


def in_process(db: Path | str, layer: str, windows: list[dict], repeats: int, env: dict | None = None) -> dict:
    """What the features route does, without HTTP: query, GeoJSON dict, orjson bytes, on the
    store `db` names (a DuckDB file or a PostgreSQL URL), with the settings the server gets
    from the environment plus `env`. Returns total, query, geojson and dumps statistics (ms)."""
    from citystack.api.geojson import feature_collection
    from citystack.api.respond import JSON_OPTIONS
    from citystack.settings import Settings
    from citystack.stores import View, open_store

    settings = Settings.from_env({**os.environ, **(env or {})})
    store, limit = open_store(str(db), settings), settings.default_limit
    parts = {"total": [], "query": [], "geojson": [], "dumps": []}
    try:
        for w in windows[:10]:  # warm-up: open the file or the connections, read metadata
            store.features(layer, View(bbox=w["bbox"]), PROPS, limit + 1)
        for _ in range(repeats):
            for w in windows:
                t0 = time.perf_counter()
                cols = store.features(layer, View(bbox=w["bbox"]), PROPS, limit + 1, 0)
                t1 = time.perf_counter()
                out = feature_collection(cols, limit)
                out["layer"], out["links"] = layer, []
                t2 = time.perf_counter()
                body = orjson.dumps(out, option=JSON_OPTIONS)
                t3 = time.perf_counter()
                assert out["numberReturned"] == w["count"], (out["numberReturned"], w)
                for key, dt in zip(parts, (t3 - t0, t1 - t0, t2 - t1, t3 - t2)):
                    parts[key].append(dt)
    finally:
        store.close()
    result = {k: stats_ms(v) for k, v in parts.items()}
    result["bytes"] = len(body)
    return result


def index_memory(db: Path | str, layer: str, bbox) -> dict:
    """What a server process pays to hold `layer` in memory: growth of this process's
    resident memory (MB) and seconds, for the index, then for the columns of PROPS and id."""
    from citystack.stores import View
    from citystack.stores.duckdb import DuckDBStore

    def rss_mb():
        return int(Path(f"/proc/{os.getpid()}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

    store = DuckDBStore(str(db), memory_rows=10**9)
    store.layers()
    out, before = {}, (rss_mb(), time.perf_counter())
    for step, props in (("index", []), ("columns", PROPS)):
        store.features(layer, View(bbox=bbox), props, 10)
        after = (rss_mb(), time.perf_counter())
        out[step] = {"mb": after[0] - before[0], "s": after[1] - before[1]}
        before = after
    store.close()
    return out


def over_http(url: str, layer: str, windows: list[dict], repeats: int) -> dict:
    """One keep-alive session, requests one after another; the first request (a fresh
    server's, which reads the layer's index) timed apart as first_ms."""
    session = requests.Session()
    paths = [features_path(layer, w["bbox"]) for w in windows]
    t0 = time.perf_counter()
    session.get(url + paths[0], timeout=60).raise_for_status()  # the worker reads the layer first
    first = time.perf_counter() - t0
    for p in paths[1:10]:
        session.get(url + p, timeout=30).raise_for_status()
    times = []
    for _ in range(repeats):
        for p, w in zip(paths, windows):
            t0 = time.perf_counter()
            r = session.get(url + p, timeout=30)
            body = r.content
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
            assert orjson.loads(body)["numberReturned"] == w["count"]
    return {**stats_ms(times), "first_ms": 1000 * first}


def ensure_wrk() -> str | None:
    """wrk's path, installing Debian's package when absent (as root, like `make chromium`)."""
    if not shutil.which("wrk"):
        try:
            subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk",
                           shell=True, capture_output=True, timeout=300)
        except subprocess.TimeoutExpired:
            pass
    return shutil.which("wrk")


def load_test(server, layer: str, windows: list[dict], seconds: int, connections: int = 32,
              threads: int = 2, tag: str = "features") -> dict:
    """Requests/s at `connections` connections, with the CPU time the server and the load
    generator used (so the figure can be read against the CPUs this machine has). wrk's
    own report goes to bench/out/wrk-TAG.txt. The figure is the steady state: first every
    worker gets a few requests on fresh connections, so that each has read its index of
    the layer (that one-time cost is over_http's first_ms)."""
    paths_file = OUT / "paths.txt"
    paths_file.write_text("".join(features_path(layer, w["bbox"]) + "\n" for w in windows))
    wrk = ensure_wrk()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(lambda p: requests.get(server.url + p, timeout=60).raise_for_status(),
                      [features_path(layer, w["bbox"]) for w in windows[:connections]]))
    cpu0, self0, kids0, load0 = server.cpu_seconds(), _cpu(RUSAGE_SELF), _cpu(RUSAGE_CHILDREN), os.getloadavg()
    if wrk:
        result = _wrk(wrk, server.url, paths_file, seconds, connections, threads, tag)
    else:
        result = _pool(server.url, paths_file.read_text().split(), seconds, connections)
        result["tool"] = f"Python thread pool of {connections} (wrk unavailable)"
    result["server_cpu_s"] = server.cpu_seconds() - cpu0
    result["client_cpu_s"] = _cpu(RUSAGE_SELF) - self0 + _cpu(RUSAGE_CHILDREN) - kids0
    result["server_cpu_ms_per_request"] = 1000 * result["server_cpu_s"] / max(result["requests"], 1)
    result["loadavg_before_after"] = [load0[0], os.getloadavg()[0]]
    return result


def _cpu(who) -> float:
    usage = getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _wrk(wrk, url, paths_file, seconds, connections, threads, tag) -> dict:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
           "-s", str(LUA), url, "--", str(paths_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    out = json.loads(line[len("WRKJSON "):])
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    out["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    out["socket_errors"] = out["connect"] + out["read"] + out["write"] + out["timeout"]
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
    for key in ("p50", "p90", "p99", "max", "mean"):  # microseconds to ms
        out[key] = out[key] / 1000
    out["tool"] = f"wrk -t{threads} -c{connections} -d{seconds}s"
    (OUT / f"wrk-{tag}.txt").write_text(proc.stdout)
    return out


def _pool(url, paths, seconds, connections) -> dict:
    """Fallback load generator: `connections` threads, one keep-alive session each."""
    deadline = time.monotonic() + seconds
    lock, times, statuses, errors = threading.Lock(), [], {}, [0]

    def worker(k):
        session, i = requests.Session(), k
        while time.monotonic() < deadline:
            i = (i + 1) % len(paths)
            t0 = time.perf_counter()
            try:
                status = session.get(url + paths[i], timeout=10).status_code
            except requests.RequestException:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                times.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(worker, range(connections)))
    elapsed = time.perf_counter() - start
    s = stats_ms(times)
    return {"requests": len(times), "rps": len(times) / elapsed, **s, "socket_errors": errors[0],
            "non2xx": sum(n for code, n in statuses.items() if not 200 <= code < 300)}
