"""The 1,000,000-row CSV import with type detection, with and without a timestamp column.

    PYTHONPATH=$PWD .venv/bin/python bench/import_types.py [ROWS]

The file without is bench/city.py's (id, name, latitude, longitude, price,
room_type); the one with adds ``started_at`` (ISO ``YYYY-MM-DD HH:MM:SS``
over a year), which becomes the layer's time field (``_dow``, ``_hour``,
a time summary). Each import runs three times; the best and median times
are printed.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import city  # noqa: E402
import common  # noqa: E402
from common import OUT  # noqa: E402


def with_time(src: Path, n: int) -> Path:
    path = OUT / f"city_{n}_time.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(9)
    start = np.datetime64("2021-01-01T00:00:00")
    stamps = (start + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")).astype(str)
    tmp = path.with_suffix(".part")
    with open(src) as fh, open(tmp, "w") as out:
        out.write(fh.readline().rstrip("\n") + ",started_at\n")
        for line, t in zip(fh, stamps):
            out.write(f"{line.rstrip()},{t.replace('T', ' ')}\n")
    tmp.replace(path)
    return path


def main(n: int = 1_000_000) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    plain = city.write_csv(OUT / f"city_{n}_s2015.csv", n)
    timed = with_time(plain, n)
    for label, path in (("without a timestamp column", plain), ("with a timestamp column", timed)):
        runs = []
        for k in range(3):
            db = OUT / "import_types.duckdb"
            db.unlink(missing_ok=True)
            seconds, proc = common.cli("load", path, "--layer", "big", "--db", db, timeout=600)
            runs.append(seconds)
        print(f"{label}: best {min(runs):.2f} s, median {statistics.median(runs):.2f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
        shown = [line for line in proc.stdout.splitlines() if "time field" in line or "layer" in line]
        print("   " + "\n   ".join(shown))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
