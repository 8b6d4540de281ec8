"""Features with filters (issue 9): a category and an hours filter on the 1,000,000-point
bench layer, beside the same request unfiltered, in-process (query-string parsing, store,
GeoJSON, orjson), p50 / p99.

The layer is the bench CSV (bench/city.py) with a time field ``t`` added (a fixed instant
of January 2021 per row, from a hash of its id), loaded as layer ``timed`` into its own
DuckDB file. Run alone: ``python bench/filters.py`` (prints the figures); `make bench`
calls :func:`step`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import city  # noqa: E402
from common import OUT, stats_ms  # noqa: E402

N = 1_000_000
DB = OUT / "timed.duckdb"
PROPS = "name,price,room_type,t"
FILTER = "room_type=Private+room&hours=8-9"


def build(csv: Path, db: Path = DB) -> float:
    """The layer `timed` from the bench CSV, with its time field; seconds taken."""
    from citystack.stores import open_writer

    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    with open_writer(str(db)) as staging:
        staging.publish("timed", "points",
                        "SELECT id, longitude AS lon, latitude AS lat, name, price, room_type, "
                        "TIMESTAMP '2021-01-01' + to_seconds(CAST(hash(id) % 2678400 AS BIGINT)) AS t "
                        "FROM read_csv(?, header = true)", [str(csv)], time="t")
    return time.perf_counter() - started


def in_process(db: Path | str, queries: dict[str, str], repeats: int = 30) -> dict:
    """Each named query string as the features route answers it, timed end to end (ms)."""
    from werkzeug.datastructures import MultiDict

    from citystack.api import params
    from citystack.api.geojson import feature_collection
    from citystack.api.respond import JSON_OPTIONS
    from citystack.settings import Settings
    from citystack.stores import open_store

    settings = Settings.from_env()
    store, limit = open_store(str(db), settings), settings.default_limit
    out = {}
    try:
        info = store.layer("timed")
        for name, query in queries.items():
            args = MultiDict(parse_qsl(f"properties={PROPS}&{query}", keep_blank_values=True))
            runs, returned, size = [], 0, 0
            for k in range(repeats + 3):  # 3 warm-up requests
                t0 = time.perf_counter()
                view = params.view(args, info, {"properties", "limit"})
                cols = store.features("timed", view, PROPS.split(","), limit + 1, 0)
                body = feature_collection(cols, limit, info)
                body["layer"], body["links"] = "timed", []
                data = orjson.dumps(body, option=JSON_OPTIONS)
                if k >= 3:
                    runs.append(time.perf_counter() - t0)
                returned, size = body["numberReturned"], len(data)
            out[name] = {**stats_ms(runs), "returned": returned, "bytes": size, "query": query}
    finally:
        store.close()
    return out


def queries(window_bbox) -> dict[str, str]:
    bbox = "bbox=" + ",".join(map(repr, window_bbox))
    return {"whole layer, unfiltered": "", "whole layer, filtered": FILTER,
            "~1,000-point window, unfiltered": bbox, "~1,000-point window, filtered": f"{bbox}&{FILTER}"}


def measure(csv: Path) -> dict:
    from citystack.stores import open_store

    load_s = build(csv)
    window = city.windows(open_store(str(DB)), "timed", 1000, 1, seed=5)[0]
    return {"load_s": load_s, "window": window, "runs": in_process(DB, queries(window["bbox"]))}


def step(r, csv: Path) -> None:
    m = measure(csv)
    r.details["filters"] = m
    runs = m["runs"]
    for scope in ("whole layer", "~1,000-point window"):
        plain, filtered = runs[f"{scope}, unfiltered"], runs[f"{scope}, filtered"]
        r.row(f"Features with `{FILTER.replace('+', ' ')}` on the {N:,}-point layer, {scope}, in-process: "
              "p50 / p99 (unfiltered beside it)", "-",
              f"{filtered['p50']:.1f} / {filtered['p99']:.1f} ms", None,
              f"unfiltered {plain['p50']:.1f} / {plain['p99']:.1f} ms; {filtered['returned']} against "
              f"{plain['returned']} features returned (limit 10,000), {filtered['bytes'] / 1e3:.0f} against "
              f"{plain['bytes'] / 1e3:.0f} kB; bench/filters.py")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    m = measure(city.write_csv(OUT / f"city_{N}_s2015.csv", N))
    print(f"layer timed built in {m['load_s']:.1f} s; window {m['window']['count']} points")
    for name, s in m["runs"].items():
        print(f"{name:<34} p50 {s['p50']:7.1f} ms  p99 {s['p99']:7.1f} ms  {s['returned']:>6} features "
              f"{s['bytes'] / 1e3:6.0f} kB  ({s['query'] or 'no filter'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
