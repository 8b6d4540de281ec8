"""`make bench-scale`: issue 11's figures on 1,000,000 points: features as Arrow (server
time, in-process and over HTTP), density images of the whole view (in-process and over
HTTP), a server worker's memory, and datashader's Canvas.points on the same points and
grid (its own virtual env, bench/out/peers/datashader, pinned in bench/peers/datashader.txt;
skipped with a note when it is absent). Writes bench/SCALE.md.

    PYTHONPATH=. .venv/bin/python bench/scale.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import city  # noqa: E402
import common  # noqa: E402
from common import OUT, Server, stats_ms  # noqa: E402

N = int(os.environ.get("BENCH_SCALE_POINTS", "1000000"))
DB = OUT / "scale.duckdb"
PARQUET = OUT / f"scale_{N}.parquet"
PEER = OUT / "peers" / "datashader" / "bin" / "python"
SIZES = [(200, 200), (1024, 768), (1920, 1080)]
REPEAT = 15


def build() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from citystack.stores import open_writer

    OUT.mkdir(parents=True, exist_ok=True)
    if not PARQUET.exists():
        lon, lat = city.points(N)
        rng = np.random.default_rng(3)
        room = rng.choice(np.array(city.ROOMS), N, p=[0.55, 0.4, 0.05])
        pq.write_table(pa.table({"id": np.arange(1, N + 1), "lon": lon, "lat": lat,
                                 "price": np.round(rng.lognormal(4.5, 0.5, N)), "room_type": room}), PARQUET)
    if not (OUT / "scale_lon.npy").exists():  # the same points for the datashader peer
        cols = pq.read_table(PARQUET, columns=["lon", "lat"])
        np.save(OUT / "scale_lon.npy", cols["lon"].to_numpy())
        np.save(OUT / "scale_lat.npy", cols["lat"].to_numpy())
    if not DB.exists():
        with open_writer(str(DB)) as staging:
            staging.publish("big", "points", "SELECT * FROM read_parquet(?)", [str(PARQUET)], source="bench")


def p50(func, repeat: int = REPEAT) -> dict:
    func()  # warm: the file's pages, the memory index
    times, cpu = [], []
    for _ in range(repeat):
        start, cpu0 = time.perf_counter(), time.process_time()
        func()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu0)
    return {**stats_ms(times), "cpu_p50": float(np.percentile(cpu, 50)) * 1000}


def arrow_figures(out: dict) -> None:
    from citystack.api.arrow import to_ipc
    from citystack.app import create_app
    from citystack.settings import Settings
    from citystack.stores import open_store
    from citystack.stores.base import Filter, View

    conf = Settings(db=str(DB), analysis_processes=0)
    store = open_store(str(DB), conf)
    info = store.layer("big")
    bbox = ",".join(map(repr, info.extent))
    client = create_app(conf, store).test_client()
    for label, props in (("price", "price"), ("room_type (dictionary)", "room_type"), ("all fields", None)):
        query = {"format": "arrow", "limit": str(N), "bbox": bbox}
        if props:
            query["properties"] = props
        size = len(client.get("/api/layers/big/features", query_string=query).get_data())
        out[f"1M points to Arrow, in-process route: lon, lat, id + {label}"] = {
            **p50(lambda: client.get("/api/layers/big/features", query_string=query).get_data(), 7), "bytes": size}
    view = View(bbox=tuple(info.extent))
    cols = store.features("big", view, ["room_type"], N)
    out["numpy path (PostGIS's): store.features of 1M, room_type"] = p50(lambda: store.features("big", view, ["room_type"], N), 7)
    out["numpy path (PostGIS's): numpy to Arrow IPC, room_type"] = p50(lambda: to_ipc(cols, info), 7)
    for w, h in SIZES:
        out[f"density in-process store {w}x{h}"] = p50(lambda: store.density("big", View(), w, h))
        q = {"width": str(w), "height": str(h)}
        out[f"density in-process route bin {w}x{h}"] = p50(
            lambda: client.get("/api/layers/big/density", query_string=q).get_data())
    filt = View(filters=[Filter("room_type", "in", ("Private room",))])
    out["density in-process store 1024x768, room_type filter"] = p50(lambda: store.density("big", filt, 1024, 768))
    out["density in-process store 1024x768, mean price"] = p50(
        lambda: store.density("big", View(), 1024, 768, "price", "mean"))
    store.close()


def http_figures(out: dict) -> None:
    with Server(DB, workers=1) as srv:
        session = requests.Session()
        info = session.get(srv.url + "/api/layers/big").json()
        bbox = ",".join(map(repr, info["extent"]))
        url = f"{srv.url}/api/layers/big/features?format=arrow&limit={N}&bbox={bbox}&properties=room_type"
        out["arrow over HTTP (room_type)"] = p50(lambda: session.get(url).content, 7)
        for w, h in SIZES:
            durl = f"{srv.url}/api/layers/big/density?width={w}&height={h}"
            out[f"density over HTTP bin {w}x{h}"] = p50(lambda: session.get(durl).content)
        worker = [p for p in common.descendants(srv.proc.pid) if p != srv.proc.pid]
        rss = []
        for pid in worker:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                rss.append(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))))
            except (OSError, StopIteration):
                pass
        out["server processes RSS MB after 1M-point Arrow + density (largest)"] = max(rss) / 1024 if rss else None


def datashader_figures(out: dict) -> str | None:
    if not PEER.exists():
        return (f"datashader not measured: no virtual env at {PEER.parent.parent} "
                "(python3 -m venv bench/out/peers/datashader && bench/out/peers/datashader/bin/pip install "
                "-r bench/peers/datashader.txt)")
    from citystack.stores import open_store
    from citystack.stores.base import View

    info = open_store(str(DB)).layer("big")
    proc = subprocess.run([str(PEER), str(HERE / "peers" / "datashader_points.py"), str(OUT),
                           json.dumps(info.extent), json.dumps(SIZES), str(REPEAT)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return f"datashader failed: {proc.stderr[-800:]}"
    got = json.loads(proc.stdout)
    store = open_store(str(DB))
    for (w, h), figure in zip(SIZES, got["sizes"]):
        out[f"datashader Canvas.points count {w}x{h}"] = figure["ms"]
        ours = store.density("big", View(), w, h).counts
        theirs = np.load(figure["path"])
        out[f"datashader vs density: pixels that differ {w}x{h}"] = int((ours != theirs).sum())
        out[f"datashader vs density: total {w}x{h}"] = [int(ours.sum()), int(theirs.sum())]
    out["datashader version"] = got["version"]
    return None


def write(out: dict, notes: list[str], seconds: float) -> None:
    m = common.machine()
    lines = ["# Scale: Arrow transport and density images (issue 11)", "",
             f"Command: `PYTHONPATH=. .venv/bin/python bench/scale.py` (generated {m['date']}, "
             f"{seconds / 60:.1f} min). Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM; "
             f"Python {m['python']}, DuckDB {m['duckdb']}, numpy {m['numpy']}. Layer: {N:,} clustered points "
             "over New York (bench/city.py), from Parquet. Times in ms: p50 (p90) of repeated requests "
             f"after one warm-up. Load average (1 min) at the end: {os.getloadavg()[0]:.1f} on these CPUs "
             "(other work shared them during the run).", "",
             "CPU ms is this process's CPU time per request (p50; threads included; over HTTP only the "
             "client's), less disturbed by the other work on the machine than the wall-clock times.", "",
             "| figure | p50 ms | p90 ms | CPU ms | note |", "|---|---|---|---|---|"]
    for key, value in out.items():
        if isinstance(value, dict):
            note = f"{value['bytes'] / 1e6:.1f} MB" if "bytes" in value else ""
            cpu = f"{value['cpu_p50']:.1f}" if "cpu_p50" in value else ""
            lines.append(f"| {key} | {value['p50']:.1f} | {value['p90']:.1f} | {cpu} | {note} |")
        else:
            lines.append(f"| {key} | | | | {value if not isinstance(value, float) else f'{value:.0f}'} |")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    (HERE / "SCALE.md").write_text("\n".join(lines) + "\n")
    (OUT / "scale.json").write_text(json.dumps(out, indent=1))


def main() -> int:
    start = time.monotonic()
    build()
    out: dict = {}
    notes: list[str] = []
    arrow_figures(out)
    http_figures(out)
    note = datashader_figures(out)
    if note:
        notes.append(note)
    write(out, notes, time.monotonic() - start)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
