"""Linked-chart histograms on the 1,000,000-point layer: three charts (price, room type,
hour of day) of a whole-layer view with two active filters, in-process; and, with the
page, the time from a brush move to the map redrawn. Run alone:
`python bench/run.py --only histograms` (merges its row into bench/RESULTS.md).

The layer is the synthetic city of bench/city.py with a time stamp per point (a month
of trips, busier at rush hours), published in the shape the stores contract gives a
layer with a time field (tests/timelayer.py).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import city  # noqa: E402
from common import OUT  # noqa: E402

N = 1_000_000
DB = OUT / "hist.duckdb"
RUNS = 40


def write_csv(path: Path, n: int = N, seed: int = 2015) -> Path:
    """id,longitude,latitude,price,room_type,started_at; written once, reused while it exists."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 2)
    lon, lat = city.points(n, seed)
    room = rng.choice(len(city.ROOMS), n, p=[0.55, 0.4, 0.05])
    price = np.round(rng.lognormal(4.6, 0.6, n))
    hour_p = np.array([1, .5, .3, .2, .3, .8, 2, 5, 8, 5, 3, 3, 4, 4, 3, 4, 6, 9, 7, 4, 3, 2.5, 2, 1.5])
    hour = rng.choice(24, n, p=hour_p / hour_p.sum())
    seconds = rng.integers(0, 31, n) * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    start = np.datetime64("2021-01-01T00:00:00")
    stamps = np.datetime_as_string(start + seconds.astype("timedelta64[s]"), unit="s")
    tmp = path.with_suffix(".part")
    with open(tmp, "w") as fh:
        fh.write("id,longitude,latitude,price,room_type,started_at\n")
        fh.writelines(f"{i + 1},{x:.6f},{y:.6f},{int(p)},{city.ROOMS[r]},{t.replace('T', ' ')}\n"
                      for i, (x, y, p, r, t) in enumerate(zip(lon.tolist(), lat.tolist(), price.tolist(),
                                                              room.tolist(), stamps.tolist())))
    tmp.replace(path)
    return path


def build() -> Path:
    import timelayer

    if not DB.exists():
        csv = write_csv(OUT / f"city_{N}_times.csv")
        timelayer.publish(DB, "trips", csv, "longitude", "latitude",
                          {"price": "integer", "room_type": "category", "started_at": "time"},
                          time="started_at", id_column="id")
    return DB


def measure(store, charts, view, runs: int = RUNS) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of `runs` calls (after one that reads what it needs)."""
    store.histograms("trips", view, charts)
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        store.histograms("trips", view, charts)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def step(r):
    import os

    from citystack.settings import Settings
    from citystack.stores import open_store
    from citystack.stores.base import Filter, View

    db = str(build())
    view = View(filters=[Filter("room_type", "in", ("Entire home/apt", "Private room")),
                         Filter("price", "max", 300.0)])
    charts = ["price", "room_type", "started_at:hours"]
    memory = open_store(db, Settings())  # as served: the layer's chart columns in memory
    t0 = time.perf_counter()
    memory.histograms("trips", view, charts)
    first = time.perf_counter() - t0
    wall, cpu = measure(memory, charts, view)
    memory.close()
    sql = open_store(db, Settings(memory_index_rows=0))
    sql_wall, sql_cpu = measure(sql, charts, view, 10)
    sql.close()
    p50 = statistics.median(wall)
    load = os.getloadavg()[0]
    r.row("Linked-chart histograms, 1,000,000 points: 3 charts (price 40 bins, room type, hour of day) of the "
          "whole layer with 2 active filters, in-process (store.histograms): p50", "≤ 50 ms",
          f"{p50:.1f} ms", p50 <= 50,
          f"p99 {np.percentile(wall, 99):.1f} ms, CPU p50 {statistics.median(cpu):.1f} ms, {RUNS} runs, load "
          f"average {load:.1f}; counted from the columns the DuckDB store holds in memory (stores/chartindex.py, "
          f"first request {first:.2f} s reads them); in SQL (index off, as PostGIS does it): p50 "
          f"{statistics.median(sql_wall):.0f} ms, CPU {statistics.median(sql_cpu):.0f} ms")
    return {"wall_ms": wall, "cpu_ms": cpu, "sql_wall_ms": sql_wall, "sql_cpu_ms": sql_cpu, "first_s": first}
