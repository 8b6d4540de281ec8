"""Shared by the benchmarks: statistics, the CLI, a `citystack serve` process, the machine."""

from __future__ import annotations

import datetime
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CITYSTACK = str(Path(sys.executable).parent / "citystack")


def stats_ms(seconds) -> dict:
    """p50/p90/p99/mean/max in milliseconds of a list of durations in seconds."""
    ms = np.asarray(seconds, float) * 1000
    return {"n": int(ms.size), "p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean()), "max": float(ms.max())}


def timed(func, *args, **kw):
    start = time.perf_counter()
    out = func(*args, **kw)
    return time.perf_counter() - start, out


def cli(*args, timeout: float = 300) -> tuple[float, subprocess.CompletedProcess]:
    """Run `citystack ARGS` to the end; its wall time and the finished process."""
    seconds, proc = timed(subprocess.run, [CITYSTACK, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"citystack {' '.join(map(str, args))} failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    return seconds, proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`citystack serve --db DB` (a DuckDB file or a PostgreSQL URL) on a free loopback port, stopped on exit."""

    def __init__(self, db: Path | str, workers: int = 2, env: dict | None = None, startup: float = 60):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [CITYSTACK, "serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(workers)]
        OUT.mkdir(parents=True, exist_ok=True)
        self.log_path = OUT / f"server-{self.port}.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, **(env or {})})
        deadline = time.monotonic() + startup
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}): {self.output()[-2000:]}")
            try:
                if requests.get(self.url + "/api/layers", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer within {startup:g} s: {self.output()[-2000:]}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server: its master, its workers and their
        analysis processes (user + system; of processes alive now)."""
        return sum(cpu_seconds(pid) for pid in descendants(self.proc.pid))

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    fields = proc_stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> list[int]:
    """`root` and every process below it (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def machine() -> dict:
    import duckdb

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu": cpu,
            "ram_gb": round(mem_kb / 1024 ** 2, 1), "python": platform.python_version(),
            "duckdb": duckdb.__version__, "numpy": np.__version__, "kernel": platform.release(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
