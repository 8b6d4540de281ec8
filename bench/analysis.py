"""The analyses: heat map kernel (vs the 2015 loop), network and interpolation end to end."""

from __future__ import annotations

import importlib
import inspect
import statistics
import time
from urllib.parse import urlencode

import numpy as np
import orjson
import requests

import city

GRID = 200
BANDWIDTH_M = 300.0


def call(func, **available):
    """Call `func` with the arguments its real signature names (from `available`)."""
    params = inspect.signature(func).parameters
    missing = [n for n, p in params.items() if p.default is p.empty and n not in available
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        raise TypeError(f"{func.__module__}.{func.__name__}{inspect.signature(func)}: "
                        f"cannot supply {', '.join(missing)}")
    return func(**{n: v for n, v in available.items() if n in params})


def repeat(func, runs: int, budget_s: float) -> dict:
    """Wall and CPU (all threads of this process) seconds of up to `runs` calls, stopping
    once `budget_s` is spent (at least one call)."""
    wall, cpu = [], []
    while len(wall) < runs and (not wall or sum(wall) + wall[-1] <= budget_s):
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"runs_s": wall, "best": min(wall), "median": statistics.median(wall), "cpu_best": min(cpu)}


def heatmap(n_big: int, n_small: int, runs: int = 7) -> dict:
    from citystack.analyses.heatmap import density

    x, y = city.to_metres(*city.points(n_big, seed=99))
    gx = np.linspace(0, x.max(), GRID)  # cell centres, metres
    gy = np.linspace(0, y.max(), GRID)
    args = dict(weights=None, gx_m=gx, gy_m=gy, bandwidth_m=BANDWIDTH_M)
    out = {"signature": f"density{inspect.signature(density)}", "grid": f"{GRID}x{GRID}",
           "cell_m": [float(gx[1] - gx[0]), float(gy[1] - gy[0])], "bandwidth_m": BANDWIDTH_M}
    out["big"] = {"n": n_big, **repeat(lambda: call(density, x_m=x, y_m=y, **args), runs, 20)}
    xs, ys = x[:n_small], y[:n_small]
    out["small"] = {"n": n_small, **repeat(lambda: call(density, x_m=xs, y_m=ys, **args), runs, 10)}
    try:
        old_fn = importlib.import_module("heatmap_2015").heatmap_2015
    except Exception as exc:  # noqa: BLE001 - written by someone else, maybe not yet
        out["old_error"] = f"bench/heatmap_2015.py: {type(exc).__name__}: {exc}"
        return out
    out["old"] = {"signature": f"heatmap_2015{inspect.signature(old_fn)}",
                  **repeat(lambda: call(old_fn, x_m=xs, y_m=ys, **args), 5, 30)}
    out["speedup"] = out["old"]["best"] / out["small"]["best"]
    out["speedup_cpu"] = out["old"]["cpu_best"] / out["small"]["cpu_best"]
    out["agreement"] = agreement(call(density, x_m=xs, y_m=ys, **args),
                                 np.asarray(call(old_fn, x_m=xs, y_m=ys, **args), float))
    return out


def agreement(new: np.ndarray, old: np.ndarray) -> dict:
    """How far the 2015 map (points snapped to cells, kernel cut at 3 bandwidths,
    remapped to 0..1) is from the exact density remapped the same way."""
    if old.shape != new.shape:
        return {"error": f"shapes differ: new {new.shape}, 2015 {old.shape}"}
    new = (new - new.min()) / ((new.max() - new.min()) or 1.0)
    old = (old - old.min()) / ((old.max() - old.min()) or 1.0)
    return {"max_abs_diff": float(np.abs(new - old).max()), "mean_abs_diff": float(np.abs(new - old).mean())}


def in_process(db, name: str, layer: str, bbox, raw: dict) -> dict:
    """The analysis as the server ran it before worker processes (Input from the
    store, the runner, in this thread), no cache."""
    from citystack.analyses.runner import Runner
    from citystack.events.progress import Progress
    from citystack.settings import Settings
    from citystack.stores import View, open_store

    importlib.import_module(f"citystack.analyses.{name}")  # registers it
    runner = Runner(open_store(str(db)), Settings(cache_bytes=0, analysis_processes=0))
    analysis, info, values = runner.prepare(name, layer, raw)
    progress = Progress()
    t0, c0 = time.perf_counter(), time.process_time()
    result = runner.run(analysis, info, View(bbox=bbox), values, progress)
    return {"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "analysis_seconds": result.get("seconds"),
            "input": result.get("input"), "progress_calls": len(progress.messages)}


def over_http(server, name: str, query: dict, runs: int, budget_s: float) -> dict:
    """Plain JSON requests, one after another (run with the result cache off), up to
    `runs` of them or until `budget_s` is spent; with the server's CPU time for each."""
    session, times, cpu = requests.Session(), [], []
    while len(times) < runs and (not times or sum(times) + times[-1] <= budget_s):
        t0, c0 = time.perf_counter(), server.cpu_seconds()
        r = session.get(f"{server.url}/api/analyses/{name}?{urlencode(query)}", timeout=120)
        body = r.content
        times.append(time.perf_counter() - t0)
        cpu.append(server.cpu_seconds() - c0)
        if r.status_code != 200:
            raise RuntimeError(f"{name}: HTTP {r.status_code}: {body[:500]!r}")
    result = orjson.loads(body)
    return {"runs_s": times, "server_cpu_s": cpu, "first": times[0], "median": statistics.median(times),
            "best": min(times), "server_seconds": result.get("seconds"), "input": result.get("input")}


def stream(server, name: str, query: dict, timeout: float = 120) -> dict:
    """One request with Accept: text/event-stream: progress events and time to `result`."""
    t0, c0 = time.perf_counter(), server.cpu_seconds()
    out = {"progress_events": 0, "first_progress_s": None}
    with requests.get(f"{server.url}/api/analyses/{name}?{urlencode(query)}", stream=True, timeout=(5, timeout),
                      headers={"Accept": "text/event-stream"}) as r:
        r.raise_for_status()
        event, data = None, []
        for line in r.iter_lines(decode_unicode=True):
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"{name}: no result within {timeout:g} s")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and event:
                if event == "progress":
                    out["progress_events"] += 1
                    out["first_progress_s"] = out["first_progress_s"] or time.perf_counter() - t0
                else:
                    payload = orjson.loads("\n".join(data))
                    if event == "error":
                        raise RuntimeError(f"{name}: error event: {payload}")
                    out.update(seconds=time.perf_counter() - t0, server_seconds=payload.get("seconds"),
                               server_cpu_s=server.cpu_seconds() - c0, input=payload.get("input"))
                    return out
                event, data = None, []
    raise RuntimeError(f"{name}: the stream ended without a result event")


def interpolate_params(field: str, model: str) -> dict:
    """Query parameters asking interpolate for `field` with `model`, by its declared params."""
    from citystack.analyses.registry import REGISTRY

    importlib.import_module("citystack.analyses.interpolate")
    params = REGISTRY["interpolate"].params
    fields = sorted((p for p in params if p.type == "field"), key=lambda p: p.name not in ("field", "value"))
    models = [p for p in params if p.type == "choice" and model in (p.choices or ())]
    out = {**({fields[0].name: field} if fields else {}), **({models[0].name: model} if models else {})}
    if field not in out.values() or model not in out.values():
        raise RuntimeError(f"cannot ask interpolate for {field}/{model}: params "
                           f"{[p.describe() for p in REGISTRY['interpolate'].params]}")
    return out
