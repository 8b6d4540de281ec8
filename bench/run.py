"""`make bench`: import, features API latency and throughput on DuckDB and, side by side
on the same points and windows, on PostGIS; analyses; a worker's memory over reloads
(bench/reload.py); writes bench/RESULTS.md.

Everything talks to 127.0.0.1 only, every step is bounded in time, servers and the
throwaway PostgreSQL cluster (tests/pgcluster.py) are stopped on the way out. Work
files go to bench/out/ (git-ignored).

Environment: BENCH_SECONDS (wrk duration, default 30), BENCH_TIME_LIMIT (the whole
run, default 570).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # pgcluster

import analysis  # noqa: E402
import areas  # noqa: E402
import city  # noqa: E402
import common  # noqa: E402
import brush  # noqa: E402
import filters  # noqa: E402
import histograms  # noqa: E402
import import_types  # noqa: E402
import pgcluster  # noqa: E402
import reload  # noqa: E402
import web  # noqa: E402
from common import OUT, ROOT, Server  # noqa: E402
from report import Report  # noqa: E402

N = 1_000_000
SECONDS = int(os.environ.get("BENCH_SECONDS", "30"))
TIME_LIMIT = int(os.environ.get("BENCH_TIME_LIMIT", "570"))
FOURSQUARE = Path(os.environ.get("CITYSTACK_SHARED_DATA", ROOT.parent / "shared" / "data")) / \
    "foursquare_nyc_checkins.csv"
BIG, FSQ = OUT / "big.duckdb", OUT / "fsq.duckdb"
NO_CACHE = {"CITYSTACK_CACHE_BYTES": "0"}  # every analysis request computes
# The comparison table's columns: DuckDB as served (small views from the in-memory
# index), DuckDB with that index off (every view through SQL), and PostGIS.
STORES = {"duckdb": "DuckDB", "duckdb-sql": "DuckDB, index off", "postgis": "PostGIS"}
INDEX_OFF = {"CITYSTACK_MEMORY_INDEX_ROWS": "0"}
IN_PROCESS, HTTP = "Features, in-process (store + GeoJSON + orjson): p50 / p99", \
    "Features, HTTP (keep-alive, sequential): p50 / p99"
RPS, ERRORS = f"Requests/s (wrk {SECONDS} s, 32 connections, `serve --workers 2`)", \
    "Errors under that load (0 required)"


class TimeUp(BaseException):
    """The whole run passed BENCH_TIME_LIMIT (not an Exception: no step swallows it)."""


def time_up(*_):
    raise TimeUp(f"BENCH_TIME_LIMIT of {TIME_LIMIT} s reached")


def fresh(db: Path) -> Path:
    for leftover in (db, Path(f"{db}.wal"), Path(f"{db}.lock")):
        leftover.unlink(missing_ok=True)
    return db


def big_csv() -> Path:
    return city.write_csv(OUT / f"city_{N}_s2015.csv", N)


def import_csv(r: Report):
    csv = big_csv()
    seconds, _ = common.cli("load", csv, "--layer", "big", "--db", fresh(BIG), timeout=300)
    r.row("Import of a 1,000,000-row CSV (`citystack load`, end to end)", "≤ 10 s", f"{seconds:.2f} s",
          seconds <= 10, f"{csv.stat().st_size / 1e6:.0f} MB, 6 columns, clustered points over New York")


def import_timed_csv(r: Report):
    """The same import with a timestamp column (types found at load; it becomes the time field)."""
    csv = import_types.with_time(big_csv(), N)
    db = OUT / "import_timed.duckdb"
    seconds, _ = common.cli("load", csv, "--layer", "big", "--db", fresh(db), timeout=300)
    r.row("Import of a 1,000,000-row CSV with a timestamp column (the time field: _dow, _hour, summary)",
          "≤ 10 s", f"{seconds:.2f} s", seconds <= 10, f"{csv.stat().st_size / 1e6:.0f} MB, 7 columns")


def windows_1k(r: Report) -> list[dict]:
    """The ~1,000-point windows of the features figures, found on the DuckDB layer; every store gets these."""
    if "windows_1k" not in r.details:
        from citystack.stores import open_store

        wins = city.windows(open_store(str(BIG)), "big", 1000, 200)
        r.details["windows_1k"] = wins
        counts = sorted(w["count"] for w in wins)
        sides = sorted(w["side_m"] for w in wins)
        r.notes.append(f"Feature windows: {len(wins)} windows of {counts[0]}..{counts[-1]} points, "
                       f"{sides[0]:.0f}..{sides[-1]:.0f} m wide, centred on random points of the layer, each "
                       "requested 3 times (after 10 warm-up requests); properties=name,price; limit 10,000 "
                       "(the default). The same windows on every store, each answer checked against that count.")
    return r.details["windows_1k"]


def comparison(r: Report):
    return r.table("Features API: DuckDB (in-memory index on and off) and PostGIS side by side",
                   f"The same {N:,} points (the synthetic CSV above, layer `big`) and the same ~1,000-point "
                   "windows on every store, measured one after the other in this run. DuckDB as served answers "
                   "these small windows from each worker's in-memory grid index (citystack/stores/pointindex.py); "
                   "'index off' is the same server with CITYSTACK_MEMORY_INDEX_ROWS=0, every view through SQL "
                   "(zone maps over Morton-ordered row groups). PostGIS in a throwaway "
                   "local PostgreSQL 15 cluster (tests/pgcluster.py, fsync off) on this machine, on the same "
                   "CPUs as the server and wrk.",
                   [IN_PROCESS, HTTP, RPS, ERRORS], list(STORES.values()))


def store_features(r: Report, store: str, db, env: dict | None = None) -> dict:
    """The features figures of one store (a DuckDB file or a PostgreSQL URL, with settings
    `env`): in-process and HTTP latency and wrk throughput on the same windows; they fill
    the store's column of the comparison."""
    wins, column = windows_1k(r), comparison(r)
    col = STORES[store]
    out = r.details.setdefault("features", {}).setdefault(store, {})
    inproc = out["in_process"] = web.in_process(db, "big", wins, 3, env)
    column.set(IN_PROCESS, col, f"{inproc['total']['p50']:.1f} / {inproc['total']['p99']:.1f} ms")
    with Server(db, workers=2, env=env) as srv:
        http = out["http"] = web.over_http(srv.url, "big", wins, 3)
        column.set(HTTP, col, f"{http['p50']:.1f} / {http['p99']:.1f} ms")
        load = out["load"] = web.load_test(srv, "big", wins, SECONDS, tag=store)
    column.set(RPS, col, f"{load['rps']:.0f} req/s (latency p50 {load['p50']:.0f}, p99 {load['p99']:.0f} ms; "
                         f"{load['requests']} requests)")
    errors = load["non2xx"] + load["socket_errors"]
    column.set(ERRORS, col, f"{'**FAIL**: ' if errors else ''}{load['non2xx']} non-2xx, "
                            f"{load['socket_errors']} socket errors")
    if errors:
        r.notes.append(f"Load test errors ({col}): {load}")
    return out


def features(r: Report):
    m = store_features(r, "duckdb", BIG)
    inproc, http, load = m["in_process"], m["http"], m["load"]
    t, q, g, d = (inproc[k] for k in ("total", "query", "geojson", "dumps"))
    r.row("Features, ~1,000-point window, in-process (store + GeoJSON + orjson): p50 / p99", "-",
          f"{t['p50']:.1f} / {t['p99']:.1f} ms", None,
          f"query {q['p50']:.1f}/{q['p99']:.1f}, GeoJSON {g['p50']:.1f}/{g['p99']:.1f}, "
          f"orjson {d['p50']:.1f}/{d['p99']:.1f} ms; {inproc['bytes'] / 1e3:.0f} kB")
    r.row("Features, ~1,000-point window, HTTP (`serve --workers 2`, keep-alive, sequential): p50", "≤ 10 ms",
          f"{http['p50']:.1f} ms", http["p50"] <= 10, f"p99 {http['p99']:.1f} ms, mean {http['mean']:.1f} ms; "
          f"a fresh server's first request {http['first_ms']:.0f} ms (its worker reads the layer's index)")
    mem = m["memory"] = web.index_memory(BIG, "big", windows_1k(r)[0]["bbox"])
    r.row(f"Features: memory a server process gives the in-memory index of the {N:,}-point layer", "-",
          f"{mem['index']['mb'] + mem['columns']['mb']:.0f} MB", None,
          f"resident memory growth: index {mem['index']['mb']:.0f} MB, read in {mem['index']['s']:.2f} s; "
          f"then id, {', '.join(web.PROPS)} {mem['columns']['mb']:.0f} MB in {mem['columns']['s']:.2f} s "
          "(DuckDB's block cache included)")
    cpu_ms = load["server_cpu_ms_per_request"]
    r.row("Features throughput, HTTP, 2 workers, 32 connections", "≥ 500 req/s", f"{load['rps']:.0f} req/s",
          load["rps"] >= 500, f"{load['tool']}; latency p50 {load['p50']:.0f}, p90 {load['p90']:.0f}, "
          f"p99 {load['p99']:.0f} ms; {load['requests']} requests, {load['non2xx']} non-2xx, "
          f"{load['socket_errors']} socket errors")
    r.row("Features: server CPU time per request under that load", "-", f"{cpu_ms:.1f} ms", None,
          f"server used {load['server_cpu_s'] / SECONDS:.2f} CPUs, the load generator "
          f"{load['client_cpu_s'] / SECONDS:.2f}; at this cost {r.machine['nproc']} CPUs serve at most "
          f"{1000 * r.machine['nproc'] / cpu_ms:.0f} req/s")


def features_sql_only(r: Report):
    """The same figures with the in-memory index off: what SQL alone gives, in this run."""
    on = r.details["features"]["duckdb"]["load"]
    off = store_features(r, "duckdb-sql", BIG, INDEX_OFF)["load"]
    r.row("Features throughput with the in-memory index on / off (same run, same windows)", "-",
          f"{on['rps'] / off['rps']:.1f}x", None,
          f"{on['rps']:.0f} against {off['rps']:.0f} req/s; server CPU per request "
          f"{on['server_cpu_ms_per_request']:.1f} against {off['server_cpu_ms_per_request']:.1f} ms")


def postgis(r: Report):
    """The features figures again, on PostGIS: a throwaway cluster, loaded from the same CSV, stopped however this ends."""
    name = "Import of the same CSV into PostGIS (`citystack load --db postgresql://...`, end to end)"
    reason = pgcluster.missing()
    if reason is None:
        try:
            cluster_s, cluster = common.timed(pgcluster.start_cluster)
        except pgcluster.Unavailable as exc:
            reason = str(exc)
    if reason is not None:
        r.row(name, "-", "skipped", None, reason)
        for row in comparison(r).rows:
            comparison(r).set(row, STORES["postgis"], "skipped")
        r.notes.append(f"PostGIS column skipped: {reason}.")
        return
    try:
        csv = big_csv()
        seconds, _ = common.cli("load", csv, "--layer", "big", "--db", cluster.url, timeout=300)
        r.details["postgis_load_s"], r.details["postgis_cluster_start_s"] = seconds, cluster_s
        r.row(name, "-", f"{seconds:.2f} s", None, f"DuckDB ingest, CSV export, COPY, GiST and _ord indexes, "
              f"ANALYZE, one transaction; cluster initdb + start + CREATE EXTENSION {cluster_s:.1f} s before it")
        store_features(r, "postgis", cluster.url)
    finally:
        cluster.stop()


def heatmap(r: Report):
    h = analysis.heatmap(N, 10_000)
    r.details["heatmap"] = h
    big, small = h["big"], h["small"]
    r.notes.append(f"Heat map: `{h['signature']}`, {h['grid']} grid (cells {h['cell_m'][0]:.0f} x "
                   f"{h['cell_m'][1]:.0f} m), bandwidth {h['bandwidth_m']:.0f} m, clustered points over New York "
                   f"in metres; wall seconds of the runs: 1M {[round(t, 3) for t in big['runs_s']]}, "
                   f"10k {[round(t, 4) for t in small['runs_s']]}. CPU times count every thread of the process.")
    r.row("Heat map density(), 1,000,000 points, 200x200 grid: best (median)", "≤ 200 ms",
          f"{big['best'] * 1000:.0f} ms ({big['median'] * 1000:.0f} ms)", big["best"] <= 0.2,
          f"{len(big['runs_s'])} runs; CPU {big['cpu_best'] * 1000:.0f} ms")
    if "old" not in h:
        r.row("Heat map speed-up vs 2015 loop, 10,000 points", "≥ 100x", "not measured", None, h["old_error"])
        return
    old, agree = h["old"], h["agreement"]
    r.row("Heat map speed-up vs 2015 loop (bench/heatmap_2015.py), 10,000 points, best of runs", "≥ 100x",
          f"{h['speedup']:.0f}x", h["speedup"] >= 100,
          f"2015 {old['best'] * 1000:.0f} ms, now {small['best'] * 1000:.1f} ms; in CPU time {h['speedup_cpu']:.0f}x "
          f"({old['cpu_best'] * 1000:.0f} vs {small['cpu_best'] * 1000:.1f} ms)")
    if "error" in agree:
        r.row("Heat map agreement with the 2015 loop", "rough", "not compared", None, agree["error"])
        return
    r.row("Heat map agreement with the 2015 loop (points snapped to cells, kernel cut at 3 bandwidths), "
          "both remapped to 0..1", "rough: max difference ≤ 5%", f"max difference {agree['max_abs_diff']:.2%}",
          agree["max_abs_diff"] <= 0.05, f"mean difference {agree['mean_abs_diff']:.3%}")


def network(r: Report):
    if not FOURSQUARE.exists():
        r.row("Network, whole Foursquare file", "≤ 2 s", "skipped", None, f"{FOURSQUARE} is absent")
        return
    load_s, _ = common.cli("load", FOURSQUARE, "--layer", "fsq", "--preset", "foursquare", "--db", fresh(FSQ))
    with Server(FSQ, env=NO_CACHE) as srv:
        http = analysis.over_http(srv, "network", {"layer": "fsq"}, runs=5, budget_s=45)
    inproc = analysis.in_process(FSQ, "network", "fsq", None, {})
    r.details["network"] = {"load_s": load_s, "in_process": inproc, "http": http}
    n = (http.get("input") or {}).get("count", "?")
    r.row(f"Network, whole Foursquare file (GET /api/analyses/network?layer=fsq, no cache): median of "
          f"{len(http['runs_s'])}", "≤ 2 s", f"{http['median']:.2f} s", http["median"] <= 2,
          f"first {http['first']:.2f} s, best {http['best']:.2f} s, server CPU {min(http['server_cpu_s']):.2f} s; "
          f"{n} check-ins; in-process {inproc['seconds']:.2f} s (CPU {inproc['cpu_s']:.2f} s)")


def interpolate(r: Report):
    from citystack.stores import open_store

    query = analysis.interpolate_params("price", "svr")
    wins = city.windows(open_store(str(BIG)), "big", 10_000, 2, seed=11)
    runs, began = [], time.monotonic()
    with Server(BIG, env=NO_CACHE) as srv:
        for w in wins:
            if runs and time.monotonic() - began > 45:
                break  # bounded: one slow run says enough
            runs.append(analysis.stream(srv, "interpolate",
                                        {"layer": "big", "bbox": ",".join(map(repr, w["bbox"])), **query}, 90))
    r.details["interpolate"] = {"windows": wins, "query": query, "stream": runs}
    worst = max(x["seconds"] for x in runs)
    r.row(f"Interpolate price (svr), 10,000 points in view, HTTP event stream, time to `result`: worst of "
          f"{len(runs)}", "≤ 10 s", f"{worst:.2f} s", worst <= 10,
          "; ".join(f"{w['count']} points: {x['seconds']:.2f} s, server CPU {x['server_cpu_s']:.2f} s, "
                    f"{x['progress_events']} progress events, first after {x['first_progress_s'] or 0:.2f} s"
                    for w, x in zip(wins, runs)))


def only(names: list[str]) -> int:
    """`python bench/run.py --only histograms`: run those steps and merge their rows into
    the existing bench/RESULTS.md (the other rows stay as the last full run left them)."""
    steps = {"import": ("Import of a 1,000,000-row CSV", "≤ 10 s", import_csv),
             "import_timed": ("Import with a timestamp column", "≤ 10 s", import_timed_csv),
             "filters": ("Features with a category and an hours filter, 1,000,000 points, in-process", "-",
                         lambda rep: filters.step(rep, big_csv())),
             "areas": ("Areas analysis and H3 bins, 1,000,000 points", "≤ 500 ms", areas.step),
             "histograms": ("Linked-chart histograms, 1,000,000 points", "≤ 50 ms", histograms.step),
             "brush": ("Brush move to map redrawn, 1,000,000 points, headless Chromium", "-", brush.step)}
    OUT.mkdir(parents=True, exist_ok=True)
    r = Report({**common.machine(), "load_start": os.getloadavg()[0]})
    for name in names:
        r.step(*steps[name])
    r.merge_into(ROOT / "bench" / "RESULTS.md", f"python bench/run.py --only {' '.join(names)}")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--only"]:
        return only(sys.argv[2:])
    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    for old_log in OUT.glob("server-*.log"):  # the last run's servers
        old_log.unlink()
    signal.signal(signal.SIGALRM, time_up)
    signal.alarm(TIME_LIMIT)
    r = Report({**common.machine(), "load_start": os.getloadavg()[0]})
    print(f"machine: {r.machine}", flush=True)
    try:
        r.step("Import of a 1,000,000-row CSV", "≤ 10 s", import_csv)
        r.step("Import with a timestamp column", "≤ 10 s", import_timed_csv)
        r.step("Features API (latency, throughput)", "p50 ≤ 10 ms, ≥ 500 req/s", features)
        r.step("Features API, DuckDB with the in-memory index off", "-", features_sql_only)
        r.step("Features API on PostGIS (same points, same windows)", "-", postgis)
        r.step("Features with a category and an hours filter, 1,000,000 points, in-process", "-",
               lambda rep: filters.step(rep, big_csv()))
        r.step("Heat map (1M points; vs 2015 at 10k)", "≤ 200 ms; ≥ 100x", heatmap)
        r.step("Network, whole Foursquare file, HTTP", "≤ 2 s", network)
        r.step("Linked-chart histograms, 1,000,000 points", "≤ 50 ms", histograms.step)
        r.step("Brush move to map redrawn, 1,000,000 points, headless Chromium", "-", brush.step)
        r.step("Interpolate (svr), 10,000 points, HTTP event stream", "≤ 10 s", interpolate)
        r.step("Worker memory over 10 reloads of a 1,000,000-point layer", "within 10%", reload.step)
        r.step("Areas analysis and H3 bins, 1,000,000 points", "≤ 500 ms", areas.step)
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
