"""`make bench-streams` (and the end of `make bench`): many open event streams and a
slowloris run against `citystack serve` with each worker model, side by side in one
run; writes bench/STREAMS.md.

For each model: features latency (a ~1,000-point window of the sample city, sequential,
keep-alive) with nothing else open; then with STREAMS open `/eventSource/` streams,
held by a separate process (asyncio, raw sockets); then during a slowloris run of
SLOWLORIS connections from another process (each sends a request line and then one
header line every few seconds, and reconnects when the server closes it). Also the
worker's resident memory with the streams open, and how soon a progress stream's
leaving client is noticed.

Everything talks to 127.0.0.1 only; every phase is bounded in time and count; servers
and helper processes are stopped on the way out. Environment: STREAMS (default 1000),
SLOWLORIS (200), PHASE_SECONDS (20: the longest a latency phase runs).
"""

from __future__ import annotations

import asyncio
import datetime
import http.client
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import OUT, ROOT, Server, stats_ms  # noqa: E402

STREAMS = int(os.environ.get("STREAMS", "1000"))
SLOWLORIS = int(os.environ.get("SLOWLORIS", "200"))
PHASE_SECONDS = float(os.environ.get("PHASE_SECONDS", "20"))
SLOWLORIS_SECONDS = 15.0  # longer than CITYSTACK_HEADER_TIMEOUT (10 s)
REQUEST_TIMEOUT = 5.0  # a features request not answered by then counts as not answered
FEATURES = "/api/layers/listings/features?bbox=114.04,22.53,114.07,22.55&properties=name,price"
MODELS = {  # column -> environment of `citystack serve` (1 worker, as by default)
    "gevent (the default: `citystack serve`)": {},
    "gthread, 32 threads (the old default)": {"CITYSTACK_SERVER": "gthread"},
    "gthread, 1,100 threads (a thread per stream)": {"CITYSTACK_SERVER": "gthread", "CITYSTACK_THREADS": "1100"},
}
DB = OUT / "streams.duckdb"


# -- load generators, each in a process of its own ----------------------------------------------

def hold_streams(port: int, count: int, seconds: float, conn) -> None:
    """Open `count` /eventSource/ streams; report how many the server answered (`: connected`)
    within `seconds`; keep reading them until told to stop."""
    async def one(ready: list):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return None
        writer.write(b"GET /eventSource/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        got = b""
        try:
            while b": connected" not in got:
                chunk = await reader.read(65536)
                if not chunk:
                    return writer
                got += chunk
            ready.append(1)
            while await reader.read(65536):
                pass
        except (OSError, asyncio.CancelledError):
            pass
        return writer

    async def main():
        ready: list = []
        started = time.monotonic()
        tasks = [asyncio.ensure_future(one(ready)) for _ in range(count)]
        while len(ready) < count and time.monotonic() - started < seconds:
            await asyncio.sleep(0.05)
        conn.send({"connected": len(ready), "seconds": round(time.monotonic() - started, 2)})
        while not conn.poll():
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def slowloris(port: int, count: int, conn, interval: float = 2.0) -> None:
    """Keep `count` connections sending a header line every `interval` seconds, never
    finishing; reconnect those the server closes; report closures at the end."""
    cut = []

    async def one():
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /api/layers HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                await writer.drain()
                k = 0
                while True:
                    try:
                        if await asyncio.wait_for(reader.read(1), interval) == b"":
                            break  # closed by the server
                    except asyncio.TimeoutError:
                        pass
                    writer.write(f"X-Slow-{k}: {k}\r\n".encode())
                    await writer.drain()
                    k += 1
            except (OSError, ConnectionError):
                pass
            cut.append(time.monotonic())
            await asyncio.sleep(0.1)

    async def main():
        tasks = [asyncio.ensure_future(one()) for _ in range(count)]
        while not conn.poll():
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send({"closed_by_server": len(cut)})

    asyncio.run(main())


def helper(target, *args) -> tuple[mp.Process, object]:
    mine, theirs = mp.Pipe()
    proc = mp.Process(target=target, args=(*args, theirs), daemon=True)
    proc.start()
    return proc, mine


def stop_helper(proc, conn, timeout: float = 30) -> dict:
    try:
        conn.send("stop")
        out = conn.recv() if conn.poll(timeout) else {}
    except (OSError, EOFError):  # it died: its traceback is on stderr
        out = {}
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
    return out


# -- measurements -------------------------------------------------------------------------------

def latency(port: int, seconds: float, requests: int = 200) -> dict:
    """Sequential keep-alive features requests for at most `seconds` (or `requests` of them):
    p50/p95 of those answered, and how many were not answered within REQUEST_TIMEOUT."""
    times, failed, started = [], 0, time.monotonic()
    conn = None
    while len(times) + failed < requests and time.monotonic() - started < seconds:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
            t0 = time.perf_counter()
            conn.request("GET", FEATURES)
            resp = conn.getresponse()
            body = resp.read()
            dt = time.perf_counter() - t0
            if resp.status == 200 and body.startswith(b'{"type":"FeatureCollection"'):
                times.append(dt)
            else:
                failed += 1
        except (OSError, http.client.HTTPException):
            failed += 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()
    out = {"answered": len(times), "not_answered": failed}
    if times:
        s = stats_ms(times)
        out.update(p50=s["p50"], p95=float(np.percentile(times, 95) * 1000), max=s["max"])
    return out


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def worker_rss_mb(server: Server) -> float:
    kids = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    total = 0
    for pid in kids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                total += int(line.split()[1])
    return total / 1024


def leave_noticed(server: Server) -> float | None:
    """Seconds from a client closing a progress stream (an analysis that checks often) to the
    server counting the analysis cancelled; None if not within 30 s."""
    import requests

    def counts():
        return requests.get(server.url + "/api/health", timeout=30).json()["analyses"]

    before = counts().get("cancelled", 0)
    r = requests.get(server.url + "/api/analyses/interpolate", params={"layer": "listings", "model": "knn"},
                     headers={"Accept": "text/event-stream"}, stream=True, timeout=30)
    lines = r.iter_lines(decode_unicode=True)
    for line in lines:
        if line.startswith("data:") and "training model 1/" in line:
            break
    left = time.monotonic()
    r.close()
    while time.monotonic() - left < 30:
        if counts().get("cancelled", 0) > before:
            return time.monotonic() - left
        time.sleep(0.05)
    return None


def fmt(lat: dict) -> str:
    if not lat["answered"]:
        return f"**none answered** ({lat['not_answered']} requests timed out after {REQUEST_TIMEOUT:g} s)"
    text = f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms ({lat['answered']} answered"
    return text + (f", **{lat['not_answered']} not answered**)" if lat["not_answered"] else ")")


def measure(column: str, env: dict) -> dict:
    out: dict = {}
    with Server(DB, workers=1, env=env) as srv:
        latency(srv.port, 5, 20)  # warm-up
        body = _get(srv.port, FEATURES)
        out["points"], out["kb"] = orjson.loads(body)["numberReturned"], len(body) / 1e3
        out["idle"] = latency(srv.port, PHASE_SECONDS)
        out["rss_before"] = worker_rss_mb(srv)
        proc, conn = helper(hold_streams, srv.port, STREAMS, PHASE_SECONDS + 10)
        try:
            out["streams_open"] = conn.recv() if conn.poll(PHASE_SECONDS + 30) else {"connected": 0}
            out["streams"] = latency(srv.port, PHASE_SECONDS)
            out["rss_streams"] = worker_rss_mb(srv)
        finally:
            stop_helper(proc, conn)
        time.sleep(2)
        out["after_streams"] = latency(srv.port, 5, 20)  # answering again once they are gone?
        proc, conn = helper(slowloris, srv.port, SLOWLORIS)
        try:
            time.sleep(1)  # let them connect
            out["slowloris"] = latency(srv.port, SLOWLORIS_SECONDS, requests=10**9)  # outlasts the header timeout
        finally:
            out["slowloris_cut"] = stop_helper(proc, conn).get("closed_by_server", 0)
        try:
            out["leave_s"] = leave_noticed(srv)
        except Exception as exc:  # noqa: BLE001 - a server that does not answer any more
            out["leave_s"] = None
            out["leave_error"] = repr(exc)[:200]
    print(column, out, flush=True)
    return out


def write(results: dict, started: float, load: tuple) -> Path:
    m = common.machine()
    cols = list(results)
    points, kb = next(iter(results.values()))["points"], next(iter(results.values()))["kb"]
    rows = [
        ("Features, nothing else open", lambda r: fmt(r["idle"])),
        (f"`/eventSource/` streams answered (of {STREAMS})", lambda r: f"{r['streams_open']['connected']}"),
        (f"Features with {STREAMS} streams open (target: p50 ≤ 20 ms)", lambda r: fmt(r["streams"])),
        (f"Worker memory (RSS), idle → {STREAMS} streams open",
         lambda r: f"{r['rss_before']:.0f} → {r['rss_streams']:.0f} MB"),
        ("Features once the streams are closed", lambda r: fmt(r["after_streams"])),
        (f"Features during slowloris ({SLOWLORIS} connections, a header line every 2 s)",
         lambda r: fmt(r["slowloris"])),
        ("Slowloris connections closed by the server during that", lambda r: str(r["slowloris_cut"])),
        ("A client leaving a progress stream: noticed (analysis cancelled) after",
         lambda r: "not within 30 s" if r["leave_s"] is None else f"{r['leave_s']:.2f} s"),
    ]
    lines = [
        "# Event streams and slow connections: worker models side by side", "",
        f"Command: `make bench-streams` (also run by `make bench`). Generated by `bench/streams.py` on "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}; the run took "
        f"{(time.monotonic() - started) / 60:.1f} min.", "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM; Python {m['python']}. Load average "
        f"(1 min) at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}: the server, the load generators and "
        "anything else running share these CPUs.", "",
        "Each column is `citystack serve` with one worker on the sample city (`citystack init --sample`), "
        "started afresh; the figures come from one run, one column after the other. Features: "
        f"`GET {FEATURES}` ({points} points, {kb:.0f} kB), sequential on one keep-alive connection from the "
        f"bench process, for up to {PHASE_SECONDS:g} s or 200 requests (during slowloris: for "
        f"{SLOWLORIS_SECONDS:g} s); a request not answered within "
        f"{REQUEST_TIMEOUT:g} s counts as not answered. Streams: {STREAMS} `/eventSource/` connections "
        "opened at once by a separate process (asyncio), each counted when the server sent `: connected`. "
        f"Slowloris: {SLOWLORIS} connections from another process, each sending a request line and then "
        "one header line every 2 s, never finishing, reconnecting when closed. Leaving client: "
        "`interpolate` with `model=knn` streamed, closed after its first `training model` event; the time "
        "until `/api/health` counts it cancelled.", "",
        "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, cell in rows:
        vals = []
        for c in cols:
            try:
                vals.append(cell(results[c]))
            except (KeyError, TypeError):
                vals.append("not measured")
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    lines += ["", "Raw figures:", "", "```", *(f"{c}: {results[c]}" for c in cols), "```", ""]
    path = ROOT / "bench" / "STREAMS.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    started, load = time.monotonic(), os.getloadavg()
    OUT.mkdir(parents=True, exist_ok=True)
    if not DB.exists():
        common.cli("init", "--sample", "--db", DB, timeout=300)
    results = {}
    for column, env in MODELS.items():
        results[column] = measure(column, env)
    print(f"wrote {write(results, started, load)}")


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
