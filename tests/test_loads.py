"""What a load guarantees beyond landing whole: the data it replaces is let go of,
a killed load leaves nothing behind once the next one has run, a replaced layer
is reported, and a layer of another layer's check-in pair is not replaced
without --replace. Both stores where the guarantee concerns both.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests

from conftest import CLI, Server, citystack, flat
from citystack.ingest import Mapping, load_file
from citystack.stores import View
from citystack.stores.duckdb import DuckDBStore

WINDOW = (-74.0, 40.70, -73.99, 40.71)


def write_points(path: Path, n: int, seed: int = 0) -> Path:
    """n points in a 0.1-degree square of New York, with a name and a price."""
    rng = np.random.default_rng(seed)
    lat, lon = 40.70 + rng.random(n) * 0.1, -74.02 + rng.random(n) * 0.1
    price = rng.integers(10, 500, n)
    with open(path, "w") as fh:
        fh.write("id,name,latitude,longitude,price\n")
        fh.writelines(f"{i},p{i},{y:.6f},{x:.6f},{p}\n" for i, (y, x, p) in
                      enumerate(zip(lat.tolist(), lon.tolist(), price.tolist())))
    return path


def write_checkins(path: Path, n: int = 200) -> Path:
    rng = np.random.default_rng(1)
    with open(path, "w") as fh:
        fh.write("user,place,time,latitude,longitude\n")
        for k in range(n):
            place = int(rng.integers(0, 20))
            fh.write(f"u{rng.integers(0, 15)},pl{place},2012-04-{1 + k % 28:02d} {k % 24:02d}:00:00,"
                     f"{40.7 + place / 1000:.6f},{-74.0 + place / 1000:.6f}\n")
    return path


CHECKINS = ["--user", "user", "--place", "place", "--time", "time"]


def brute_count(path: Path, bbox) -> int:
    data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(2, 3))
    lat, lon = data[:, 0], data[:, 1]
    x0, y0, x1, y1 = bbox
    return int(((lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)).sum())


def files_held(pid: int | str, path: Path) -> list[str]:
    """What process `pid` holds open of `path`: the links in /proc/PID/fd naming it
    (a file deleted while open reads "PATH (deleted)")."""
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if link.startswith(str(path)) and link[len(str(path)):] in ("", " (deleted)"):
            out.append(link)
    return sorted(out)


# -- the old generation is let go of --------------------------------------------

@pytest.fixture()
def reloaded(tmp_path):
    """A DuckDB file with layer `pts`, and a second file to load over it."""
    db = tmp_path / "gen.duckdb"
    first, second = write_points(tmp_path / "a.csv", 3000, 1), write_points(tmp_path / "b.csv", 5000, 2)
    load_file(str(db), str(first), "pts")
    return db, first, second


def test_reload_closes_the_old_generation(reloaded):
    db, first, second = reloaded
    store = DuckDBStore(str(db), memory_rows=10**6)  # with memory indexes, as served
    try:
        threads = [threading.Thread(target=store.features, args=("pts", View(bbox=WINDOW), None, 100))
                   for _ in range(4)]  # a cursor per thread
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(flat(store.features("pts", View(bbox=WINDOW), None, 10_000))["id"]) == brute_count(first, WINDOW)
        assert files_held("self", db) == [str(db)]

        load_file(str(db), str(second), "pts")
        assert files_held("self", db) == [f"{db} (deleted)"]  # the store has not looked yet

        assert len(flat(store.features("pts", View(bbox=WINDOW), None, 10_000))["id"]) == brute_count(second, WINDOW)
        assert files_held("self", db) == [str(db)]  # the new file only: the old one is closed
    finally:
        store.close()
    assert files_held("self", db) == []


def test_a_running_query_keeps_its_generation(reloaded, monkeypatch):
    """A query that began on the old file finishes on it, after the reload and after
    queries on the new file; the old file is let go of when it ends."""
    from citystack.stores import duckdb as duck

    db, first, second = reloaded
    store = DuckDBStore(str(db), memory_rows=10**6)
    flat(store.features("pts", View(bbox=WINDOW), None, 10))
    inside, go = threading.Event(), threading.Event()
    run = duck._Generation.run

    def held_run(gen, sql, params=()):
        if threading.current_thread().name == "slow":
            inside.set()
            assert go.wait(30)
        return run(gen, sql, params)

    monkeypatch.setattr(duck._Generation, "run", held_run)
    result = []
    slow = threading.Thread(target=lambda: result.append(store.count("pts", View())), name="slow")
    slow.start()
    try:
        assert inside.wait(30)
        load_file(str(db), str(second), "pts")
        assert store.count("pts", View()) == 5000
        assert files_held("self", db) == sorted([str(db), f"{db} (deleted)"])  # still in use
    finally:
        go.set()
        slow.join(30)
    assert result == [3000]  # ran on the old connection, after the reload
    assert files_held("self", db) == [str(db)]
    store.close()


def test_server_worker_lets_go_of_replaced_files(tmp_path):
    db = tmp_path / "srv.duckdb"
    first, second = write_points(tmp_path / "a.csv", 3000, 1), write_points(tmp_path / "b.csv", 5000, 2)
    citystack("load", first, "--layer", "pts", "--db", db)
    srv = Server(db, "--workers", "1", "--threads", "4")
    try:
        url = srv.url + "/api/layers/pts/features"
        params = {"bbox": ",".join(map(str, WINDOW)), "limit": 10_000}
        for csv in (second, first, second):
            citystack("load", csv, "--layer", "pts", "--db", db)
            body = requests.get(url, params=params, timeout=30).json()
            assert body["numberReturned"] == brute_count(csv, WINDOW)
        with open(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children") as fh:
            (worker,) = fh.read().split()
        assert files_held(worker, db) == [str(db)]
    finally:
        srv.stop()


# -- stale files of killed loads -------------------------------------------------

def leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(".citystack-"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_leftovers_beside_the_database_are_removed_by_the_next_load_and_init(tmp_path):
    db = tmp_path / "city.duckdb"
    small = write_points(tmp_path / "s.csv", 50)
    citystack("load", small, "--layer", "pts", "--db", db)
    planted = [f".citystack-city.duckdb-{'0' * 15}1.duckdb", f".citystack-city.duckdb-{'0' * 15}1.duckdb.wal",
               ".citystack-k3x_9abc.duckdb", ".citystack-k3x_9abc.duckdb.wal"]  # the last two: older loads' names
    others = [f".citystack-city.duckdb.old-{'0' * 15}1.duckdb",  # another database's, in the same folder
              ".citystack-notes.txt", "city.duckdb.backup"]
    for name in planted + others:
        (tmp_path / name).write_bytes(b"x" * 1000)
    citystack("load", small, "--layer", "pts", "--db", db)
    assert leftovers(tmp_path) == sorted(n for n in others if n.startswith(".citystack-"))
    assert (tmp_path / "city.duckdb.backup").exists()

    (tmp_path / planted[0]).write_bytes(b"x")
    citystack("init", "--force", "--db", db)
    assert not (tmp_path / planted[0]).exists()


def big_csv(folder: Path) -> Path:
    return write_points(folder / "big.csv", 400_000, 3)


def kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the load ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def test_killed_load_leaves_nothing_after_the_next_load(tmp_path):
    db = tmp_path / "city.duckdb"
    citystack("load", write_points(tmp_path / "s.csv", 50), "--layer", "pts", "--db", db)
    before = digest(db)
    proc = subprocess.Popen(CLI + ["load", str(big_csv(tmp_path)), "--layer", "big", "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: leftovers(tmp_path), "temporary file")
    assert leftovers(tmp_path)  # what the kill left
    assert digest(db) == before
    proc = citystack("load", tmp_path / "s.csv", "--layer", "pts", "--db", db)
    assert leftovers(tmp_path) == []
    assert "replaced layer pts (50 points" in proc.stdout


def pg_activity(url: str, pattern: str) -> int:
    with psycopg.connect(url) as con:
        return con.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'citystack' "
                           "AND datname = current_database() AND query ILIKE %s", [pattern]).fetchone()[0]


def test_killed_load_leaves_nothing_postgis(fresh_pg, tmp_path):
    """Killed in the middle of its COPY: nothing in $TMPDIR (nothing is written there at
    all), no half-filled table in the database, and the next load goes through."""
    url = fresh_pg
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    citystack("load", write_points(tmp_path / "s.csv", 50), "--layer", "pts", "--db", url)
    before = pg_snapshot(url)
    proc = subprocess.Popen(CLI + ["load", str(big_csv(tmp_path)), "--layer", "big", "--db", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TMPDIR": str(tmpdir)})
    kill_when(proc, lambda: pg_activity(url, "COPY%"), "COPY")
    assert os.listdir(tmpdir) == []
    deadline = time.monotonic() + 30
    while pg_activity(url, "%") and time.monotonic() < deadline:  # the server notices the client is gone
        time.sleep(0.05)
    assert pg_snapshot(url) == before
    citystack("load", tmp_path / "s.csv", "--layer", "pts", "--db", url, env={**os.environ, "TMPDIR": str(tmpdir)})
    assert os.listdir(tmpdir) == []
    with psycopg.connect(url) as con:
        assert con.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '%%#new%%'").fetchone()[0] == 0


# -- reports and pairs, on both stores ---------------------------------------------

def pg_snapshot(url: str):
    with psycopg.connect(url) as con:
        return (con.execute("SELECT relname FROM pg_class WHERE relname LIKE 'layer%%' ORDER BY 1").fetchall(),
                con.execute("SELECT name, count, version, loaded_at FROM citystack_layers ORDER BY name").fetchall(),
                con.execute("SELECT version FROM citystack_meta").fetchall())


def state(db):
    return digest(db) if isinstance(db, Path) else pg_snapshot(db)


def layer_counts(db) -> dict[str, int]:
    from citystack.stores import open_store

    store = open_store(str(db))
    try:
        return {info.name: info.count for info in store.layers()}
    finally:
        store.close()


def minute(t: datetime.datetime) -> datetime.datetime:
    return t.replace(second=0, microsecond=0, tzinfo=None)


def test_replacing_a_layer_says_so(any_db, tmp_path):
    first, second = write_points(tmp_path / "a.csv", 1234), write_points(tmp_path / "b.csv", 20)
    began = datetime.datetime.now(datetime.timezone.utc)
    proc = citystack("load", first, "--layer", "pts", "--db", any_db)
    ended = datetime.datetime.now(datetime.timezone.utc)
    assert "replaced" not in proc.stdout
    proc = citystack("load", second, "--layer", "pts", "--db", any_db)
    found = re.search(r"note: replaced layer pts \(1,234 points loaded (\S+ \S+) UTC\)", proc.stdout)
    assert found, proc.stdout
    loaded = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M")
    assert minute(began) <= loaded <= minute(ended)
    assert layer_counts(any_db) == {"pts": 20}


def test_a_pair_is_not_broken_without_replace(any_db, tmp_path):
    checkins, plain = write_checkins(tmp_path / "c.csv"), write_points(tmp_path / "p.csv", 30)
    citystack("load", checkins, "--layer", "visits", *CHECKINS, "--db", any_db)
    places = layer_counts(any_db)["visits_places"]

    # A plain layer where check-in layer visits keeps its places: refused, nothing changed.
    before = state(any_db)
    proc = citystack("load", plain, "--layer", "visits_places", "--db", any_db, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'visits_places' is the places layer of check-in layer 'visits'" in proc.stderr
    assert "--replace" in proc.stderr and "nothing was changed" in proc.stderr
    assert state(any_db) == before

    # Loading the pair again is a plain reload of both.
    proc = citystack("load", checkins, "--layer", "visits", *CHECKINS, "--db", any_db)
    assert "replaced layer visits (200 check-ins" in proc.stdout
    assert f"replaced layer visits_places ({places} points" in proc.stdout

    # A check-in layer whose places layer would replace a layer of its own: refused too.
    citystack("load", plain, "--layer", "shops_places", "--db", any_db)
    before = state(any_db)
    proc = citystack("load", checkins, "--layer", "shops", *CHECKINS, "--db", any_db, check=False)
    assert proc.returncode == 2
    assert "check-in layer 'shops' keeps its places in layer 'shops_places'" in proc.stderr
    assert "is a layer of its own (30 points" in proc.stderr and "--replace" in proc.stderr
    assert state(any_db) == before

    # --replace goes on, and says what it broke.
    proc = citystack("load", plain, "--layer", "visits_places", "--replace", "--db", any_db)
    assert (f"replaced layer visits_places ({places} points" in proc.stdout
            and "it was the places layer of check-in layer visits" in proc.stdout)
    citystack("load", checkins, "--layer", "shops", *CHECKINS, "--replace", "--db", any_db)
    assert layer_counts(any_db) == {"visits": 200, "visits_places": 30, "shops": 200, "shops_places": places}


def test_one_load_at_a_time_duckdb(tmp_path):
    """A second write of a DuckDB file while one runs is refused at once, the file untouched."""
    import fcntl

    db, small = tmp_path / "one.duckdb", write_points(tmp_path / "s.csv", 10)
    citystack("load", small, "--layer", "pts", "--db", db)
    before = digest(db)
    with open(f"{db}.lock", "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        proc = citystack("load", small, "--layer", "other", "--db", db, check=False)
    assert proc.returncode == 2 and "another citystack command is writing" in proc.stderr
    assert digest(db) == before and set(layer_counts(db)) == {"pts"}


def test_loads_take_turns_postgis(fresh_pg, tmp_path):
    """A load waits while another holds the write lock, and lands after it."""
    url, small = fresh_pg, write_points(tmp_path / "s.csv", 10)
    citystack("load", small, "--layer", "pts", "--db", url)
    before = pg_snapshot(url)
    holder = psycopg.connect(url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [0x63697479])
    try:
        proc = subprocess.Popen(CLI + ["load", str(small), "--layer", "other", "--db", url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not holder.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND NOT granted").fetchone()[0]:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        assert pg_snapshot(url) == before  # waiting, nothing written
    finally:
        holder.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert set(layer_counts(url)) == {"pts", "other"}


def test_load_file_refuses_in_process_too(tmp_path):
    from citystack.ingest import IngestError

    db = tmp_path / "p.duckdb"
    load_file(str(db), str(write_checkins(tmp_path / "c.csv")), "v", Mapping(user="user", place="place", time="time"))
    with pytest.raises(IngestError, match="places layer of check-in layer 'v'"):
        load_file(str(db), str(write_points(tmp_path / "p.csv", 5)), "v_places")
    report = load_file(str(db), str(tmp_path / "p.csv"), "v_places", replace=True)
    assert any(n.startswith("replaced layer v_places") for n in report.notes)
