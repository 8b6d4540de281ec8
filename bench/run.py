"""`make bench`: import, features API latency and throughput, analyses; writes bench/RESULTS.md.

Everything talks to 127.0.0.1 only, every step is bounded in time, servers are
stopped on the way out. Work files go to bench/out/ (git-ignored).

Environment: BENCH_SECONDS (wrk duration, default 30), BENCH_WAIT_ANALYSES (seconds
to wait for analysis modules still being written, default 60), BENCH_TIME_LIMIT
(the whole run, default 720).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import analysis  # noqa: E402
import city  # noqa: E402
import common  # noqa: E402
import web  # noqa: E402
from common import OUT, ROOT, Server  # noqa: E402
from report import Report  # noqa: E402

N = 1_000_000
SECONDS = int(os.environ.get("BENCH_SECONDS", "30"))
WAIT_ANALYSES = float(os.environ.get("BENCH_WAIT_ANALYSES", "60"))
TIME_LIMIT = int(os.environ.get("BENCH_TIME_LIMIT", "720"))
FOURSQUARE = Path(os.environ.get("CITYSTACK_SHARED_DATA", ROOT.parent / "shared" / "data")) / \
    "foursquare_nyc_checkins.csv"
BIG, FSQ = OUT / "big.duckdb", OUT / "fsq.duckdb"
NO_CACHE = {"CITYSTACK_CACHE_ENTRIES": "0"}  # every analysis request computes


class TimeUp(BaseException):
    """The whole run passed BENCH_TIME_LIMIT (not an Exception: no step swallows it)."""


def time_up(*_):
    raise TimeUp(f"BENCH_TIME_LIMIT of {TIME_LIMIT} s reached")


def fresh(db: Path) -> Path:
    for leftover in (db, Path(f"{db}.wal"), Path(f"{db}.lock")):
        leftover.unlink(missing_ok=True)
    return db


def import_csv(r: Report):
    csv = city.write_csv(OUT / f"city_{N}_s2015.csv", N)
    seconds, _ = common.cli("load", csv, "--layer", "big", "--db", fresh(BIG), timeout=300)
    r.row("Import of a 1,000,000-row CSV (`citystack load`, end to end)", "≤ 10 s", f"{seconds:.2f} s",
          seconds <= 10, f"{csv.stat().st_size / 1e6:.0f} MB, 6 columns, clustered points over New York")


def features(r: Report):
    from citystack.stores import open_store

    store = open_store(str(BIG))
    wins = city.windows(store, "big", 1000, 200)
    r.details["windows_1k"] = wins
    counts = sorted(w["count"] for w in wins)
    sides = sorted(w["side_m"] for w in wins)
    window = (f"{len(wins)} windows of {counts[0]}..{counts[-1]} points, "
              f"{sides[0]:.0f}..{sides[-1]:.0f} m wide")
    r.notes.append(f"Feature windows: {window}, centred on random points of the layer, each requested 3 times "
                   "(after 10 warm-up requests); properties=name,price; limit 10,000 (the default).")
    inproc = web.in_process(BIG, "big", wins, 3)
    r.details["features_in_process"] = inproc
    t, q, g, d = (inproc[k] for k in ("total", "query", "geojson", "dumps"))
    r.row("Features, ~1,000-point window, in-process (store + GeoJSON + orjson): p50 / p99", "-",
          f"{t['p50']:.1f} / {t['p99']:.1f} ms", None,
          f"query {q['p50']:.1f}/{q['p99']:.1f}, GeoJSON dicts {g['p50']:.1f}/{g['p99']:.1f}, "
          f"orjson {d['p50']:.1f}/{d['p99']:.1f} ms; {inproc['bytes'] / 1e3:.0f} kB")
    with Server(BIG, workers=2) as srv:
        if srv.stubbed:
            r.notes.append(f"Features server: analysis modules {', '.join(srv.stubbed)} did not import yet; it ran "
                           "through bench/serve_stub.py (the same `citystack serve` with those modules empty).")
        http = web.over_http(srv.url, "big", wins, 3)
        r.details["features_http"] = http
        r.row("Features, ~1,000-point window, HTTP (`serve --workers 2`, keep-alive, sequential): p50", "≤ 10 ms",
              f"{http['p50']:.1f} ms", http["p50"] <= 10, f"p99 {http['p99']:.1f} ms, mean {http['mean']:.1f} ms")
        load = web.load_test(srv.url, "big", wins, SECONDS)
        r.details["features_load"] = load
        errors = load["non2xx"] + load["socket_errors"]
        r.row("Features throughput, HTTP, 2 workers, 32 connections", "≥ 500 req/s", f"{load['rps']:.0f} req/s",
              load["rps"] >= 500, f"{load['tool']}; latency p50 {load['p50']:.0f}, p90 {load['p90']:.0f}, "
              f"p99 {load['p99']:.0f} ms; {load['requests']} requests, {load['non2xx']} non-2xx, "
              f"{load['socket_errors']} socket errors")
        if errors:
            r.notes.append(f"Load test errors: {load}")


def heatmap(r: Report):
    h = analysis.heatmap(N, 10_000)
    r.details["heatmap"] = h
    big, small = h["big"], h["small"]
    r.notes.append(f"Heat map: `{h['signature']}`, {h['grid']} grid (cells {h['cell_m'][0]:.0f} x "
                   f"{h['cell_m'][1]:.0f} m), bandwidth {h['bandwidth_m']:.0f} m, clustered points over New York "
                   f"in metres; runs (s): 1M {[round(t, 3) for t in big['runs_s']]}, "
                   f"10k {[round(t, 4) for t in small['runs_s']]}.")
    r.row("Heat map density(), 1,000,000 points, 200x200 grid: best (median)", "≤ 200 ms",
          f"{big['best'] * 1000:.0f} ms ({big['median'] * 1000:.0f} ms)", big["best"] <= 0.2,
          f"{len(big['runs_s'])} runs")
    if "old" not in h:
        r.row("Heat map speed-up vs 2015 loop, 10,000 points", "≥ 100x", "not measured", None, h["old_error"])
        return
    old, agree = h["old"], h["agreement"]
    r.row("Heat map speed-up vs 2015 loop (bench/heatmap_2015.py), 10,000 points, best of runs", "≥ 100x",
          f"{h['speedup']:.0f}x", h["speedup"] >= 100,
          f"2015 {old['best']:.3f} s, now {small['best'] * 1000:.1f} ms")
    if "error" in agree:
        r.row("Heat map agreement with the 2015 loop", "rough", "not compared", None, agree["error"])
        return
    rel = agree["max_rel_diff_cells_above_1pct_peak"]
    r.row("Heat map agreement with the 2015 loop (kernel cut at ±3σ): max relative difference", "rough (~1%)",
          f"{rel:.2%} (cells above 1% of peak)", None,
          f"max |diff| / peak {agree['max_abs_diff_over_peak']:.2%}, scale new/old {agree['scale_new_over_old']:.4f}")
    print(f"heat map vs 2015: max relative difference {rel:.4%} ({agree})", flush=True)


def network(r: Report):
    if not FOURSQUARE.exists():
        r.row("Network, whole Foursquare file", "≤ 2 s", "skipped", None, f"{FOURSQUARE} is absent")
        return
    load_s, _ = common.cli("load", FOURSQUARE, "--layer", "fsq", "--preset", "foursquare", "--db", fresh(FSQ))
    inproc = analysis.in_process(FSQ, "network", "fsq", None, {})
    with Server(FSQ, env=NO_CACHE) as srv:
        http = analysis.over_http(srv.url, "network", {"layer": "fsq"}, runs=5)
    r.details["network"] = {"load_s": load_s, "in_process": inproc, "http": http}
    n = (http.get("input") or {}).get("count", "?")
    r.row("Network, whole Foursquare file (GET /api/analyses/network?layer=fsq, no cache): median of 5",
          "≤ 2 s", f"{http['median']:.2f} s", http["median"] <= 2,
          f"first {http['first']:.2f} s, best {http['best']:.2f} s, server-side {http['server_seconds']} s; "
          f"{n} check-ins; in-process {inproc['seconds']:.2f} s")


def interpolate(r: Report):
    from citystack.stores import open_store

    query = analysis.interpolate_params("price", "svr")
    wins = city.windows(open_store(str(BIG)), "big", 10_000, 2, seed=11)
    runs = []
    with Server(BIG, env=NO_CACHE) as srv:
        for w in wins:
            runs.append(analysis.stream(srv.url, "interpolate",
                                        {"layer": "big", "bbox": ",".join(map(repr, w["bbox"])), **query}, 90))
    inproc = analysis.in_process(BIG, "interpolate", "big", wins[0]["bbox"], query)
    r.details["interpolate"] = {"windows": wins, "query": query, "stream": runs, "in_process": inproc}
    worst = max(x["seconds"] for x in runs)
    r.row("Interpolate price (svr), 10,000 points in view, HTTP event stream, time to `result`: worst of 2",
          "≤ 10 s", f"{worst:.2f} s", worst <= 10,
          "; ".join(f"{w['count']} pts: {x['seconds']:.2f} s, {x['progress_events']} progress events"
                    for w, x in zip(wins, runs)) + f"; in-process {inproc['seconds']:.2f} s")


def main() -> int:
    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGALRM, time_up)
    signal.alarm(TIME_LIMIT)
    r = Report({**common.machine(), "load_start": os.getloadavg()[0]})
    print(f"machine: {r.machine}", flush=True)
    try:
        r.step("Import", import_csv)
        r.step("Features", features)
        missing = common.wait_for_analyses(WAIT_ANALYSES)
        if missing:
            r.notes.append(f"After waiting {WAIT_ANALYSES:g} s these analysis modules still did not import: "
                           f"{'; '.join(missing)}. Their figures are 'not measured'; the code is in place.")
        r.step("Heat map", heatmap)
        r.step("Network", network)
        r.step("Interpolate", interpolate)
    except TimeUp as exc:
        r.notes.append(f"Stopped early: {exc}.")
    finally:
        signal.alarm(0)
        r.machine["load_end"] = os.getloadavg()[0]
        r.write(ROOT / "bench" / "RESULTS.md", "make bench", time.monotonic() - started, OUT / "results.json")
    print(f"wrote bench/RESULTS.md in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
