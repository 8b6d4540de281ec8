"""Areas and hexagons (issue 10): the `areas` analysis of the 1,000,000-point bench layer
into New York's 233 neighbourhoods (a 16 x 16 grid of polygons over the city when
../shared/data is absent), in-process on DuckDB and PostGIS; H3 bins of the same
points at resolution 9 (the numpy lattice path against h3's per-point loop).

`make bench` runs :func:`step`; ``python bench/areas.py`` runs it alone and prints the rows.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # pgcluster

import analysis  # noqa: E402
import city  # noqa: E402
import common  # noqa: E402
from common import OUT, ROOT  # noqa: E402

N = 1_000_000
HOODS = Path(os.environ.get("CITYSTACK_SHARED_DATA", ROOT.parent / "shared" / "data")) / "nyc_neighbourhoods.geojson"
DB = OUT / "areas.duckdb"


def polygons() -> Path:
    """New York's neighbourhoods, or a 16 x 16 grid of squares over the bench city."""
    if HOODS.exists():
        return HOODS
    path = OUT / "grid_256.geojson"
    x0, y0, x1, y1 = city.EXTENT
    dx, dy = (x1 - x0) / 16, (y1 - y0) / 16
    feats = [{"type": "Feature", "properties": {"cell": f"{i}-{j}"}, "geometry": {"type": "Polygon", "coordinates": [[
        [x0 + i * dx, y0 + j * dy], [x0 + (i + 1) * dx, y0 + j * dy], [x0 + (i + 1) * dx, y0 + (j + 1) * dy],
        [x0 + i * dx, y0 + (j + 1) * dy], [x0 + i * dx, y0 + j * dy]]]}} for i in range(16) for j in range(16)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def load(db) -> dict:
    csv = city.write_csv(OUT / f"city_{N}_s2015.csv", N)
    for leftover in (Path(f"{db}"), Path(f"{db}.wal")) if not str(db).startswith("postgres") else ():
        leftover.unlink(missing_ok=True)
    points_s, _ = common.cli("load", csv, "--layer", "big", "--db", db, timeout=600)
    areas_s, _ = common.cli("load", polygons(), "--layer", "areas", "--db", db, timeout=300)
    return {"points_load_s": points_s, "areas_load_s": areas_s}


def area_figures(db, runs: int = 5) -> dict:
    from citystack.stores import View, open_store

    store = open_store(str(db))
    try:
        counts = analysis.repeat(lambda: store.area_stats("big", View(), "areas"), runs, 60)
        median = analysis.repeat(lambda: store.area_stats("big", View(), "areas", "price"), runs, 60)
        stats = store.area_stats("big", View(), "areas")
        return {"count": counts, "median": median, "areas": int(len(stats["id"])),
                "in_areas": int(stats["count"].sum()), "outside": int(stats["outside"])}
    finally:
        store.close()


def h3_figures(db, runs: int = 5) -> dict:
    import h3.api.numpy_int as h3n
    import numpy as np

    from citystack.analyses import hexagons
    from citystack.stores import View, open_store

    store = open_store(str(db))
    cols = store.columns("big", View(), ["lon", "lat"])
    lon, lat = cols["lon"], cols["lat"]
    lattice = analysis.repeat(lambda: hexagons.cell_groups(lon, lat, 9), runs, 60)
    uniq, inv = hexagons.cell_groups(lon, lat, 9)
    t0 = time.perf_counter()
    loop = np.fromiter(map(h3n.latlng_to_cell, lat.tolist(), lon.tolist(), [9] * len(lon)), np.uint64, len(lon))
    loop_s = time.perf_counter() - t0
    agree = bool(np.array_equal(uniq[inv], loop))

    from citystack.app import create_app
    from citystack.settings import Settings

    client = create_app(Settings(db=str(db)), store).test_client()
    route = analysis.repeat(lambda: client.get("/api/layers/big/bins?shape=h3&resolution=9"), 3, 60)
    body = client.get("/api/layers/big/bins?shape=h3&resolution=9").get_json()
    store.close()
    return {"lattice": lattice, "loop_s": loop_s, "agree": agree, "cells": int(len(uniq)), "route": route,
            "route_cells": body["numberReturned"], "points": len(lon)}


def postgis_figures(runs: int = 3) -> dict:
    import pgcluster

    reason = pgcluster.missing()
    if reason:
        return {"skipped": reason}
    cluster = pgcluster.start_cluster()
    try:
        load(cluster.url)
        return area_figures(cluster.url, runs)
    finally:
        cluster.stop()


def step(r) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    loads = load(DB)
    a = area_figures(DB)
    r.details["areas"] = {"loads": loads, "duckdb": a}
    what = f"{a['areas']} areas ({'nyc_neighbourhoods.geojson' if HOODS.exists() else '16 x 16 grid'})"
    r.row(f"Areas analysis (counts), 1,000,000 points into {what}, in-process, DuckDB: best (median)", "≤ 500 ms",
          f"{a['count']['best'] * 1000:.0f} ms ({a['count']['median'] * 1000:.0f} ms)", a["count"]["best"] <= 0.5,
          f"{a['in_areas']} points in areas, {a['outside']} in none; with the median price "
          f"{a['median']['best'] * 1000:.0f} ms; CPU {a['count']['cpu_best'] * 1000:.0f} ms")
    pg = postgis_figures()
    r.details["areas"]["postgis"] = pg
    if "skipped" in pg:
        r.row("Areas analysis (counts), same points and areas, PostGIS", "-", "skipped", None, pg["skipped"])
    else:
        same = pg["in_areas"] == a["in_areas"] and pg["outside"] == a["outside"]
        r.row("Areas analysis (counts), same points and areas, PostGIS (one ST_Covers query): best", "-",
              f"{pg['count']['best'] * 1000:.0f} ms", None,
              f"with the median price {pg['median']['best'] * 1000:.0f} ms; totals "
              f"{'equal DuckDB' + chr(39) + 's' if same else 'DIFFER from DuckDB'}")
    h = h3_figures(DB)
    r.details["h3"] = h
    r.row("H3 cells of 1,000,000 points at resolution 9 (numpy lattice + one h3 call per cell): best (median)",
          "≤ 500 ms", f"{h['lattice']['best'] * 1000:.0f} ms ({h['lattice']['median'] * 1000:.0f} ms)",
          h["lattice"]["best"] <= 0.5,
          f"{h['cells']} cells; h3.latlng_to_cell per point {h['loop_s'] * 1000:.0f} ms; "
          f"identical cells: {h['agree']}")
    r.row("H3 bins route, whole 1,000,000-point layer, res 9, in-process (read, cells, stats, GeoJSON)", "-",
          f"{h['route']['best'] * 1000:.0f} ms", None, f"{h['route_cells']} hexagons")


if __name__ == "__main__":
    from report import Report

    report = Report(common.machine())
    step(report)
    for row in report.rows:
        print(row)
    print(json.dumps(report.details, indent=1, default=str)[:4000])
