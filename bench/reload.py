"""A server worker's memory over reloads of a 1,000,000-point layer.

`citystack serve --workers 1` on a DuckDB file holding the synthetic city
(bench/city.py); the layer is loaded again with `citystack load`, over and
over, while a client keeps requesting small feature windows (answered from
the worker's in-memory index, which each new file makes the worker build
again). After each reload, once a request has been answered from the new
file, the worker's resident memory (VmRSS) and the deleted database files it
still holds open are read from /proc.

    python bench/reload.py [RELOADS]     (prints JSON; also a step of `make bench`)
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import city  # noqa: E402
import common  # noqa: E402
from common import OUT, Server  # noqa: E402

N = 1_000_000
LAYER = "big"


def worker_pid(srv: Server) -> int:
    (pid,) = Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children").read_text().split()
    return int(pid)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def deleted_held(pid: int, db: Path) -> int:
    """Files of the database's folder that `pid` holds open although they were deleted."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        count += link.startswith(str(db.parent)) and link.endswith(" (deleted)")
    return count


def windows(k: int, seed: int = 5) -> list[str]:
    """k bboxes of about 300 m around points of the layer."""
    lon, lat = city.points(N)
    pick = np.random.default_rng(seed).choice(N, k, replace=False)
    return [f"{x - 0.002!r},{y - 0.0015!r},{x + 0.002!r},{y + 0.0015!r}" for x, y in zip(lon[pick].tolist(), lat[pick].tolist())]


def measure(reloads: int = 10, db: Path = OUT / "reload.duckdb") -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    csv = city.write_csv(OUT / f"city_{N}_s2015.csv", N)
    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)
    load_s = [common.cli("load", csv, "--layer", LAYER, "--db", db, timeout=300)[0]]
    boxes = windows(200)
    url_of = lambda bbox: f"/api/layers/{LAYER}/features?bbox={bbox}&properties=name,price"  # noqa: E731
    with Server(db, workers=1) as srv:
        pid, session = worker_pid(srv), requests.Session()
        stop, answered, errors = threading.Event(), [0], []

        def client():  # requests all along, the reloads included
            with requests.Session() as s:
                k = 0
                while not stop.is_set():
                    r = s.get(srv.url + url_of(boxes[k % len(boxes)]), timeout=60)
                    answered[0] += 1
                    if r.status_code != 200:
                        errors.append(r.status_code)
                    k += 1

        def settle() -> dict:
            """Requests until one is answered from the file now in place, then a round more."""
            version = session.get(srv.url + "/api/health", timeout=60).json()["data_version"]
            for bbox in boxes:
                r = session.get(srv.url + url_of(bbox), timeout=60)
                assert r.status_code == 200, r.text[:500]
            return {"rss_mb": round(rss_mb(pid), 1), "deleted_files_held": deleted_held(pid, db),
                    "data_version": version}

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        try:
            rounds = [settle()]  # after the first load
            for _ in range(reloads):
                load_s.append(common.cli("load", csv, "--layer", LAYER, "--db", db, timeout=300)[0])
                rounds.append(settle())
        finally:
            stop.set()
            thread.join(60)
    first, last = rounds[1]["rss_mb"], rounds[-1]["rss_mb"]
    return {"points": N, "reloads": reloads, "rounds": rounds, "load_s": [round(s, 2) for s in load_s],
            "rss_after_1_reload_mb": first, f"rss_after_{reloads}_reloads_mb": last,
            "growth_pct": round(100 * (last - first) / first, 1),
            "deleted_files_held_at_end": rounds[-1]["deleted_files_held"],
            "requests": answered[0], "errors": errors[:20]}


def step(r) -> None:
    """The `make bench` row (bench/run.py)."""
    m = r.details["reload"] = measure()
    last = m[f"rss_after_{m['reloads']}_reloads_mb"]
    r.row(f"Worker memory after {m['reloads']} reloads of a {N:,}-point layer, against after one (requests "
          "running between and during reloads)", "within 10%",
          f"{m['rss_after_1_reload_mb']:.0f} -> {last:.0f} MB "
          f"({m['growth_pct']:+.1f}%)", abs(m["growth_pct"]) <= 10,
          f"deleted files held open at the end: {m['deleted_files_held_at_end']}; RSS per round "
          f"{[x['rss_mb'] for x in m['rounds']]} MB; {m['requests']} background requests, "
          f"{len(m['errors'])} errors")


if __name__ == "__main__":
    result = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
    print(json.dumps(result, indent=2))
