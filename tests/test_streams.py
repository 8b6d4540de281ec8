"""Event streams: many open at once on the default server, slow and idle
connections cut off, status lines numbered, replayed to new streams and
resumed with Last-Event-ID, on both stores (PostGIS through LISTEN/NOTIFY,
across worker processes)."""

from __future__ import annotations

import queue
import socket
import threading
import time

from typing import NamedTuple

import pytest
import requests

from citystack.events import broadcast
from citystack.events.broadcast import Broadcaster
from citystack.events.progress import stream
from citystack.stores import View, open_store
from conftest import Server, build_sample, flat

SOUTH, NORTH, WEST, EAST = 22.53, 22.55, 114.04, 114.07
BBOX = f"{WEST},{SOUTH},{EAST},{NORTH}"
WAIT = 30  # seconds any one socket read may take before a test gives up on it


def get_data(url: str) -> requests.Response:
    r = requests.get(url + "/getData/", params={"lat1": SOUTH, "lat2": NORTH, "lng1": WEST, "lng2": EAST},
                     timeout=60)
    assert r.status_code == 200
    return r


def status_lines(url: str) -> list[str]:
    """The lines a /getData/ request posts, as it answers (the reference the streams must show)."""
    n = len(get_data(url).json()["features"])
    return ["starting data query...", f"{n} points returned", "idle"]


def features(url: str) -> dict:
    r = requests.get(url + "/api/layers/listings/features", params={"bbox": BBOX, "properties": "name,price"},
                     timeout=WAIT)
    assert r.status_code == 200
    return r.json()


def health(url: str) -> dict:
    return requests.get(url + "/api/health", timeout=WAIT).json()


class Event(NamedTuple):
    id: str
    data: str
    replayed: bool  # came in the stream's backlog, before its `: connected` comment


class Stream:
    """One /eventSource/ stream, read in a thread into a queue of Events."""

    def __init__(self, url: str, last_event_id: str | None = None):
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.response = requests.get(url + "/eventSource/", headers=headers, stream=True, timeout=(5, WAIT))
        self.events: queue.Queue = queue.Queue()
        self._connected = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._connected.wait(WAIT)

    def _read(self):
        event: dict = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith(": connected"):
                    self._connected.set()
                elif line.startswith(("id: ", "data: ")):
                    key, _, value = line.partition(": ")
                    event[key] = value
                elif line == "" and "data" in event:
                    self.events.put(Event(event.get("id"), event["data"], not self._connected.is_set()))
                    event = {}
        except Exception:  # noqa: BLE001 - closed by the test (from another thread: any error)
            pass

    def take(self, stop, live_only: bool = False) -> list[Event]:
        """Events up to the first for which `stop(event)` is true (and it)."""
        seen: list[Event] = []
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if live_only and event.replayed:
                continue
            seen.append(event)
            if stop(event):
                return seen
        raise AssertionError(f"no such event within {WAIT} s; got {seen}")

    def close(self):
        self.response.close()


def idle(event: Event) -> bool:
    return event.data == "idle"


def until_id(event_id: str):
    return lambda event: event.id == event_id


def number(event_id: str) -> tuple[str, int]:
    process, _, n = event_id.partition("-")
    return process, int(n)


def ends_with(events: list[Event], lines: list[str]) -> list[Event]:
    """The last len(lines) events, after checking their data are `lines` and their
    ids one process's, consecutive."""
    tail = events[-len(lines):]
    assert [e.data for e in tail] == lines, events
    ids = [number(e.id) for e in tail]
    assert len({p for p, _ in ids}) == 1 and [n for _, n in ids] == list(range(ids[0][1], ids[0][1] + len(lines)))
    return tail


def watch_post(url: str, *refs: Stream) -> list[list[Event]]:
    """Post the lines of one /getData/ request; the events each of `refs` (open already) got for them."""
    lines = status_lines(url)
    return [ends_with(ref.take(idle, live_only=True), lines) for ref in refs]


def open_raw_stream(port: int) -> socket.socket:
    """An /eventSource/ stream on a bare socket, once the server has said `: connected`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(b"GET /eventSource/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    got = b""
    while b": connected" not in got:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the stream"
        got += chunk
    assert got.startswith(b"HTTP/1.1 200")
    return sock


# -- many streams, the default server -----------------------------------------------------------

def test_many_open_streams_leave_features_answering(server, store):
    """200 open streams, far more than gthread's 32 threads (which stopped answering at 32),
    and the features route still answers, with the rows the store has."""
    before = health(server.url)["event_streams"]
    expected = flat(store.features("listings", View(bbox=(WEST, SOUTH, EAST, NORTH)), ["name", "price"], 10_001))
    socks = [open_raw_stream(server.port) for _ in range(200)]
    try:
        assert health(server.url)["event_streams"] >= before + 200
        for _ in range(3):
            got = features(server.url)
            assert got["numberReturned"] == len(expected["id"]) > 100
            assert [f["id"] for f in got["features"]] == expected["id"].tolist()
        lines = status_lines(server.url)  # and every stream gets the status lines
        for sock in socks[:: 40]:
            sock.settimeout(WAIT)
            got = b""
            while b"data: idle" not in got:
                chunk = sock.recv(65536)
                assert chunk
                got += chunk
            assert all(f"data: {line}".encode() in got for line in lines)
    finally:
        for sock in socks:
            sock.close()


# -- slow and idle connections -----------------------------------------------------------------

@pytest.fixture(scope="module")
def strict_server(duckdb_db):
    srv = Server(duckdb_db, env={"CITYSTACK_HEADER_TIMEOUT": "1", "CITYSTACK_KEEPALIVE": "1"})
    yield srv
    srv.stop()


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (read to its end), False when it stays open for WAIT s."""
    sock.settimeout(WAIT)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_slow_headers_are_cut_off(strict_server):
    """200 connections that never finish their headers (slowloris) do not stop the
    server answering, and each is closed once its header time is up; so is one that
    keeps sending a byte now and then (the limit is on the whole header, not between bytes)."""
    lazy = []
    for _ in range(200):
        sock = socket.create_connection(("127.0.0.1", strict_server.port), timeout=WAIT)
        sock.sendall(b"GET /api/layers HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        lazy.append(sock)
    try:
        assert features(strict_server.url)["numberReturned"] > 100
        assert all(closed_by_server(sock) for sock in lazy)
    finally:
        for sock in lazy:
            sock.close()

    drip = socket.create_connection(("127.0.0.1", strict_server.port), timeout=WAIT)
    drip.sendall(b"GET /api/layers HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    cut = False
    for _ in range(200):  # a byte every 0.1 s, 20 s at most: the server must cut it first
        try:
            drip.sendall(b"X")
        except OSError:
            cut = True
            break
        drip.settimeout(0.1)
        try:
            if drip.recv(1) == b"":
                cut = True
                break
        except socket.timeout:
            pass
        except ConnectionResetError:
            cut = True
            break
    drip.close()
    assert cut, "a connection that kept sending one header byte at a time was never closed"


def read_response(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk
        head += chunk
    head, _, body = head.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200")
    return body


def test_idle_keepalive_connection_is_closed(strict_server):
    sock = socket.create_connection(("127.0.0.1", strict_server.port), timeout=WAIT)
    try:
        request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for _ in range(2):  # kept alive: a second request on the same connection is answered
            sock.sendall(request)
            assert b'"status":"ok"' in read_response(sock)
        assert closed_by_server(sock)  # then idle: closed
    finally:
        sock.close()


# -- numbered, replayed and resumed status lines -----------------------------------------------

def test_lines_posted_before_subscribing_are_replayed(server):
    ref = Stream(server.url)  # open before: tells which ids the lines got
    try:
        ours, = watch_post(server.url, ref)  # posted, and answered, before `late` opens
    finally:
        ref.close()
    late = Stream(server.url)
    try:
        got = late.take(until_id(ours[-1].id))
        assert [(e.id, e.data) for e in got[-3:]] == [(e.id, e.data) for e in ours]
        assert got[-3].replayed  # the first line was long posted: it came in the backlog
    finally:
        late.close()


def test_last_event_id_resumes(server):
    ref = Stream(server.url)
    try:
        seen, = watch_post(server.url, ref)  # what a client saw before it lost its connection
        missed, = watch_post(server.url, ref)  # posted while it was away
    finally:
        ref.close()
    pairs = [(e.id, e.data) for e in missed]
    again = Stream(server.url, last_event_id=seen[-1].id)
    try:  # exactly what it missed: nothing before, nothing twice
        assert [(e.id, e.data) for e in again.take(until_id(missed[-1].id))] == pairs
    finally:
        again.close()
    again = Stream(server.url, last_event_id=seen[0].id)  # had seen the first line only
    try:
        got = again.take(until_id(missed[-1].id))
        assert [(e.id, e.data) for e in got] == [(e.id, e.data) for e in seen[1:]] + pairs
        assert all(e.replayed for e in got)
    finally:
        again.close()


def test_ids_of_one_stream_increase(server):
    ref = Stream(server.url)
    try:
        for _ in range(3):
            get_data(server.url)
        got = []
        for _ in range(3):
            got += ref.take(idle, live_only=True)
        ids = [number(e.id) for e in got]
        assert len(ids) == 9 and len({p for p, _ in ids}) == 1
        assert [n for _, n in ids] == list(range(ids[0][1], ids[0][1] + 9))
    finally:
        ref.close()


# -- the hub itself, with a clock of its own ---------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_hub_replays_recent_lines_only():
    clock = Clock()
    hub = Broadcaster(clock)
    hub.publish("old")
    clock.now += broadcast.REPLAY_SECONDS + 0.5
    hub.publish("recent")
    clock.now += 1
    sub = hub.subscribe()
    assert [line.text for line in sub.backlog] == ["recent"]
    hub.publish("live")
    assert sub.get(1).text == "live" and sub.get(0) is None
    assert [line.n for line in sub.backlog] == [2]


def test_hub_resumes_after_its_own_ids_only():
    clock = Clock()
    hub, other = Broadcaster(clock), Broadcaster(clock)
    assert hub.process != other.process
    for i in range(broadcast.RING_SIZE + 10):
        hub.publish(f"line {i}")
    clock.now += broadcast.REPLAY_SECONDS + 1  # all old now
    ids = [hub.event_id(line) for line in hub.subscribe(f"{hub.process}-0").backlog]
    assert len(ids) == broadcast.RING_SIZE  # what the ring still holds, oldest first
    assert ids == [f"{hub.process}-{n}" for n in range(11, broadcast.RING_SIZE + 11)]
    resumed = hub.subscribe(f"{hub.process}-{broadcast.RING_SIZE + 7}")
    assert [line.text for line in resumed.backlog] == [f"line {i}" for i in range(broadcast.RING_SIZE + 7,
                                                                                  broadcast.RING_SIZE + 10)]
    for foreign in (f"{other.process}-5", "garbage", f"{hub.process}-x", f"{hub.process}-٣"):
        assert hub.subscribe(foreign).backlog == []  # unknown: a new stream (and nothing is recent)


def test_closing_hub_ends_streams():
    hub = Broadcaster()
    hub.publish("before")
    lines = broadcast.event_stream(hub, heartbeat=3600)
    assert next(lines).startswith(b"id: ") and next(lines) == b": connected\n\n"
    hub.end_streams()
    assert list(lines) == [] and hub.subscribers == 0


# -- leaving clients ---------------------------------------------------------------------------

def test_progress_stream_notices_a_client_that_left():
    """The stream asks `gone()` while it waits and ends, cancelling the work, without
    writing a heartbeat (the heartbeat here is an hour away)."""
    left, stopped = threading.Event(), threading.Event()

    def work(progress):
        while not progress.cancelled:
            time.sleep(0.02)
        stopped.set()

    events = stream(work, lambda exc: {"detail": str(exc)}, heartbeat=3600, probe=left.is_set)
    assert next(events) == b": started\n\n"
    left.set()
    assert list(events) == []
    assert stopped.wait(WAIT)


def test_gone_check_sees_a_closed_connection():
    from citystack.api.peer import gone_check

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    served, _ = listener.accept()
    try:
        gone = gone_check({"gunicorn.socket": served})
        assert gone() is False
        client.sendall(b"GET /next HTTP/1.1\r\n\r\n")  # a pipelined request is not a goodbye
        assert gone() is False and served.recv(100, socket.MSG_PEEK).startswith(b"GET /next")
        client.close()
        deadline = time.monotonic() + WAIT
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gone() is True
        assert gone_check({}) is None  # no socket (Flask's test client): no check
    finally:
        served.close()
        listener.close()


# -- PostGIS, two worker processes ---------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_workers(pg_cluster):
    url = pg_cluster.url
    try:
        has_sample = "listings" in {info.name for info in open_store(url).layers()}
    except Exception:  # noqa: BLE001 - an empty database has no tables yet
        has_sample = False
    if not has_sample:
        build_sample(url)
    srv = Server(url, "--workers", "2")
    yield srv
    srv.stop()


def test_postgis_lines_numbered_per_process(pg_workers):
    """Every worker hears every line (NOTIFY) and numbers it itself. A stream that
    resumes with Last-Event-ID gets exactly what it missed when it lands on the worker
    that sent the id, and the recent lines (like a new stream) when it lands on another."""
    url = pg_workers.url
    refs: dict[str, Stream] = {}  # a stream on each worker, by its process name
    opened: list[Stream] = []
    try:
        while len(refs) < 2:
            assert len(opened) < 40, f"every stream went to one worker: {list(refs)}"
            opened += [Stream(url) for _ in range(4)]
            for ref, events in zip(opened, watch_post(url, *opened)):
                refs.setdefault(number(events[0].id)[0], ref)
        (p1, ref1), (p2, ref2) = refs.items()
        for ref in opened:
            if ref not in (ref1, ref2):
                ref.close()
        opened = [ref1, ref2]
        for _ in range(6):  # whichever worker each reconnection lands on
            seen1, _ = watch_post(url, ref1, ref2)  # what a client on p1 saw before it lost its connection
            missed = dict(zip((p1, p2), watch_post(url, ref1, ref2)))  # posted while it was away
            again = Stream(url, last_event_id=seen1[-1].id)
            opened.append(again)
            targets = {missed[p1][-1].id, missed[p2][-1].id}
            got = again.take(lambda e: e.id in targets)
            process = number(got[-1].id)[0]
            pairs = [(e.id, e.data) for e in missed[process]]
            if process == p1:  # resumed: exactly what it missed
                assert [(e.id, e.data) for e in got] == pairs
            else:  # another worker: the recent lines (those it had seen too), with that worker's ids
                assert process == p2 and [(e.id, e.data) for e in got[-3:]] == pairs and len(got) >= 6
            again.close()
    finally:
        for s in opened:
            s.close()
