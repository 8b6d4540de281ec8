"""Shared fixtures: a sample database, the real New York data when present,
and a real `citystack serve` process to test through HTTP."""

from __future__ import annotations

import os
import queue
import socket
import threading
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

import pgcluster  # noqa: E402  (tests/ is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CITYSTACK_SHARED_DATA", ROOT.parent / "shared" / "data"))
AIRBNB = SHARED / "AB_NYC_2019.csv"
FOURSQUARE = SHARED / "foursquare_nyc_checkins.csv"
CLI = [sys.executable, "-m", "citystack.cli"]


def needs_shared(path: Path = AIRBNB):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (../shared/data not beside the repo)")


def citystack(*args, check=True, **kw) -> subprocess.CompletedProcess:
    """Run the CLI as a user would; return the finished process."""
    proc = subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"citystack {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def flat(cols: dict) -> dict:
    """A store's features answer with its properties beside id, lon and lat."""
    out = {k: v for k, v in cols.items() if k != "properties"}
    out.update(cols.get("properties", {}))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `citystack serve` subprocess on a free loopback port."""

    def __init__(self, db, *extra, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+")  # db is a file path or a postgresql:// URL
        self.proc = subprocess.Popen(CLI + ["serve", "--db", str(db), "--port", str(self.port), *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "CITYSTACK_HEARTBEAT": "0.5",
                                          # one process unless a test asks for more (--workers N)
                                          "CITYSTACK_WORKERS": "1", **(env or {})})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.output()}")
            try:
                requests.get(self.url + "/api/layers", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server did not start: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def build_sample(db) -> None:
    """The sample city, plus the New York layers `nyc` and `fsq` when ../shared/data is there."""
    citystack("init", "--sample", "--db", db)
    if AIRBNB.exists():
        citystack("load", AIRBNB, "--layer", "nyc", "--preset", "airbnb", "--db", db)
    if FOURSQUARE.exists():
        citystack("load", FOURSQUARE, "--layer", "fsq", "--preset", "foursquare", "--db", db)


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL 15 + PostGIS cluster; skips when they are not installed."""
    with pgcluster.running() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def duckdb_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("db") / "citystack.duckdb"
    build_sample(db)
    return db


@pytest.fixture(scope="session", params=["duckdb", "postgis"])
def sample_db(request):
    """The same data in each store: every test that uses it runs against both."""
    if request.param == "duckdb":
        return request.getfixturevalue("duckdb_db")
    url = request.getfixturevalue("pg_cluster").url
    build_sample(url)
    return url


@pytest.fixture(scope="session")
def server(sample_db):
    srv = Server(sample_db)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def duckdb_server(duckdb_db):
    """For the browser tests: the page is the same whatever the store."""
    srv = Server(duckdb_db)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def store(sample_db):
    from citystack.stores import open_store

    return open_store(str(sample_db))


def open_stream(url: str, replay: bool = False) -> tuple[queue.Queue, threading.Event]:
    """The data lines of an `/eventSource/` stream, as they come. Lines posted
    before it subscribed (its backlog, sent before its `: connected` comment)
    are left out unless `replay`, so that a test sees only what it posted."""
    lines, stop, ready = queue.Queue(), threading.Event(), threading.Event()

    def run():
        try:
            with requests.get(url + "/eventSource/", stream=True, timeout=(5, 30)) as r:
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith(": connected"):
                        ready.set()
                    if line.startswith("data: ") and (replay or ready.is_set()):
                        lines.put(line[6:])
                    if stop.is_set():
                        return
        except requests.RequestException as exc:
            lines.put(f"!{exc}")

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(10)
    return lines, stop


def read_until_idle(lines: queue.Queue, timeout: float = 15) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout
    while "idle" not in seen and time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.5))
        except queue.Empty:
            pass
    return seen


# --- in-process: the app itself, without a server process ---------------------------------------
#
# Where a real server adds nothing (plain request/response checks of the API and the analyses),
# tests call the app through Flask's test client: the same routes, parameters, errors and event
# streams, without spawning `citystack serve`. What needs a process (gunicorn, streams across
# processes, clients going away, the browser, the CLI) keeps the `server` fixtures above.

SSE = {"Accept": "text/event-stream"}


def make_app(db, store, **settings):
    """`create_app` over an open store, with the test servers' heartbeat and any settings changed."""
    from citystack.app import create_app
    from citystack.settings import Settings

    return create_app(Settings(db=str(db), heartbeat=0.5).replace(**settings), store)


@pytest.fixture(scope="session")
def client(sample_db, store):
    """Flask's test client on `create_app(settings, store)` over the session store: the API
    in this process, against each store (DuckDB sample db and the PostGIS cluster)."""
    return make_app(sample_db, store).test_client()


@pytest.fixture(scope="session")
def client_with(sample_db, store):
    """A test client with some settings changed, over the same store:
    ``client_with(analysis_time_limit=1).get(...)``."""
    def make(**settings):
        return make_app(sample_db, store, **settings).test_client()

    return make


def response_lines(response):
    """The lines of a test-client response, read as the app writes them (an event stream is
    not read to its end first: a stream that never ends is caught by `read_stream`)."""
    pending = ""
    for chunk in response.iter_encoded():
        pending += chunk.decode()
        *lines, pending = pending.split("\n")
        yield from lines
    if pending:
        yield pending


def read_stream(lines, limit: float = 30) -> tuple[list[tuple[str, str]], list[str]]:
    """Every (event, data) pair and every comment of an event stream, read to its end.

    Fails when the stream has not ended `limit` seconds after the start: the servers
    under test send a comment every 0.5 s, so a stream that goes on after its last
    event is seen to go on, rather than waited for."""
    events, comments, event, data = [], [], "message", []
    deadline = time.monotonic() + limit
    for line in lines:
        if line == "":
            if data:
                events.append((event, "\n".join(data)))
            event, data = "message", []
        elif line.startswith(":"):
            comments.append(line[1:].strip())
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        if time.monotonic() > deadline:
            raise AssertionError(f"the stream did not end within {limit} s: events {events}, "
                                 f"comments {comments[-5:]}")
    if data:
        events.append((event, "\n".join(data)))
    return events, comments


@pytest.fixture()
def fresh_pg(pg_cluster):
    """A database of its own in the session's PostgreSQL cluster (dropped after the test)."""
    import uuid

    import psycopg

    name = f"fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    yield pg_cluster.url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_cluster.url, autocommit=True) as con:
        con.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["duckdb", "postgis"])
def any_db(request, tmp_path):
    """An empty database of each store: a DuckDB file path, or a fresh PostGIS database."""
    if request.param == "duckdb":
        return tmp_path / "any.duckdb"
    return request.getfixturevalue("fresh_pg")
