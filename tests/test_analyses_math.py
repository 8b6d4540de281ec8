"""The analyses' numbers against references computed the slow, obvious way.

No server: the pure functions of each analysis module, the registered analyses
run on a stand-in for ``registry.Input``, and a small DuckDB store for the one
computation done in SQL (the network's co-visits).
"""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import orjson
import pytest
from sklearn.cluster import DBSCAN, KMeans

from citystack.analyses import clusters as clusters_mod
from citystack.analyses import heatmap as heatmap_mod
from citystack.analyses import network as network_mod
from citystack.analyses.grid import Grid, grid_for_cells, grid_for_size, grid_result
from citystack.analyses.heatmap import density
from citystack.analyses.interpolate import fit_surface
from citystack.analyses.registry import REGISTRY, load

R = 6371008.8
BBOX = (-74.02, 40.70, -73.96, 40.74)  # about 5 km x 4.4 km


def project(lon, lat, bbox):
    """The equirectangular projection, written out independently of grid.py."""
    lon0, lat0 = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return (R * math.cos(math.radians(lat0)) * np.radians(np.asarray(lon) - lon0),
            R * np.radians(np.asarray(lat) - lat0))


def direct_density(x, y, w, gx, gy, h):
    """Every point's normalized Gaussian added at every cell centre."""
    out = np.zeros((gy.size, gx.size))
    for p in range(x.size):
        d2 = (gx[None, :] - x[p]) ** 2 + (gy[:, None] - y[p]) ** 2
        out += (1.0 if w is None else w[p]) * np.exp(-d2 / (2 * h * h))
    return out / (2 * math.pi * h * h)


class FakeInput:
    """What an analysis sees of registry.Input, over arrays."""

    def __init__(self, bbox, **cols):
        self.bbox, self.cols = bbox, {k: np.asarray(v) for k, v in cols.items()}

    def columns(self, *names):
        return {n: self.cols[n] for n in names}

    lon = property(lambda self: self.cols["lon"])
    lat = property(lambda self: self.cols["lat"])

    def info(self):
        n = len(self.cols["lon"])
        return {"layer": "test", "bbox": list(self.bbox), "count": n, "used": n, "sampled": False}


def progress_log():
    calls = []
    return calls, lambda message, fraction=None: calls.append((message, fraction))


# -- grid --------------------------------------------------------------------

def test_grid_projection_and_cells():
    g = grid_for_cells(BBOX, 50)
    assert (g.nx, g.ny) == (50, 44)  # about-square cells along the longer (east-west) side
    x, y = project(g.lon, g.lat, BBOX)
    assert np.allclose(g.x, x) and np.allclose(g.y, y)
    assert np.allclose(g.cell_m, (np.diff(g.x).mean(), np.diff(g.y).mean()))
    assert np.allclose(g.project(BBOX[0], BBOX[1]), project(BBOX[0], BBOX[1], BBOX))
    sized = grid_for_size(BBOX, 250)
    assert max(sized.cell_m) <= 250 and (sized.nx - 1) * 250 < 5100
    with pytest.raises(ValueError):
        grid_for_size(BBOX, 5)


def test_grid_result_is_north_to_south_with_none_for_nan():
    g = Grid(BBOX, 3, 2)
    values = np.array([[1.0, 2.0, np.nan], [4.0, 8.0, 0.0]])  # row 0 = south
    out = grid_result(g, values, "max", raw=values)
    assert out["values"] == [[0.5, 1.0, 0.0], [0.125, 0.25, None]]
    assert out["raw"] == [[4.0, 8.0, 0.0], [1.0, 2.0, None]]
    assert (out["nx"], out["ny"], out["bbox"]) == (3, 2, list(BBOX))


# -- heatmap -----------------------------------------------------------------

@pytest.mark.parametrize("tiles", ["auto", "small"])
@pytest.mark.parametrize("cells, h, weighted", [
    (60, 100.0, False),   # 9 h reach 11 cells of 83 m: kernel rows as geometric sequences
    (100, 60.0, True),
    (40, 30.0, True),     # cells coarser than the bandwidth: kernel rows by exp
    (80, 2000.0, False),  # kernel wider than the view
    (30, 150.0, True),    # negative weights too
    (16, 20.0, False),
])
def test_density_equals_direct_sum(cells, h, weighted, tiles, monkeypatch):
    if tiles == "small":  # 5-cell tiles and small batches, as many points get
        monkeypatch.setattr(heatmap_mod._Plan, "SIDES", [5])
        monkeypatch.setattr(heatmap_mod._Plan, "BATCH", 1000)
    rng = np.random.default_rng(cells + int(h))
    g = grid_for_cells(BBOX, cells)
    n = 400
    lon = rng.uniform(BBOX[0] - 0.005, BBOX[2] + 0.005, n)  # some just outside the view
    lat = rng.uniform(BBOX[1] - 0.005, BBOX[3] + 0.005, n)
    lon[:100] = rng.normal(-73.99, 0.002, 100)  # a dense spot and a spread
    x, y = project(lon, lat, BBOX)
    w = None
    if weighted:
        w = rng.uniform(0.5, 20, n)
        if cells == 30:
            w[::7] *= -1
    ref = direct_density(x, y, w, g.x, g.y, h)
    peak = np.abs(ref).max()
    for cutoff in ({}, {"cutoff": None}):
        got = density(x, y, w, g.x, g.y, h, **cutoff)
        assert got.shape == (g.ny, g.nx)
        assert np.abs(got - ref).max() / peak < 1e-9
        big = np.abs(ref) > 1e-6 * peak  # and cell by cell where there is density to speak of
        assert (np.abs(got - ref)[big] / np.abs(ref[big])).max() < 1e-6


@pytest.mark.parametrize("h", [120.0, 2000.0])
def test_density_without_truncation_matches_every_cell(h):
    """cutoff=None sums every point at every cell: even the far tails agree,
    also for points tens of bandwidths away."""
    rng = np.random.default_rng(7)
    g = Grid(BBOX, 50, 40)
    x, y = project(rng.uniform(*BBOX[0::2], 200), rng.uniform(*BBOX[1::2], 200), BBOX)
    x, y = np.r_[x, 30e3, -45e3, 0.0, 2e6], np.r_[y, 0.0, 20e3, -60e3, 0.0]
    ref = direct_density(x, y, None, g.x, g.y, h)
    got = density(x, y, None, g.x, g.y, h, cutoff=None)
    tail = ref > 1e-250
    assert (np.abs(got - ref)[tail] / ref[tail]).max() < 1e-6
    assert np.abs(got[~tail]).max(initial=0) <= 1e-249
    only_far = density(x[-4:], y[-4:], None, g.x, g.y, h, cutoff=None)
    ref = direct_density(x[-4:], y[-4:], None, g.x, g.y, h)
    tail = ref > 1e-250
    assert tail.any() == (h > 1000) and (np.abs(only_far - ref)[tail] / ref[tail]).max(initial=0) < 1e-6


def test_density_skips_nan_and_integrates_to_the_weight():
    g = Grid((-0.05, -0.05, 0.05, 0.05), 100, 100)
    x = np.array([0.0, 120.0, np.nan, 300.0])
    y = np.array([0.0, -80.0, 5.0, np.nan])
    w = np.array([2.0, 3.0, 1.0, 1.0])
    got = density(x, y, w, g.x, g.y, 200.0)
    ref = direct_density(x[:2], y[:2], w[:2], g.x, g.y, 200.0)
    assert np.allclose(got, ref, rtol=1e-9, atol=1e-9 * ref.max())  # terms beyond 7 bandwidths are left out
    dx, dy = g.cell_m
    assert got.sum() * dx * dy == pytest.approx(5.0, rel=1e-6)


def test_density_reports_progress_and_can_be_cancelled():
    rng = np.random.default_rng(1)
    g = grid_for_cells(BBOX, 40)
    x, y = project(rng.uniform(*BBOX[0::2], 1000), rng.uniform(*BBOX[1::2], 1000), BBOX)
    calls, progress = progress_log()
    density(x, y, None, g.x, g.y, 300.0, progress)
    assert calls and calls[0][0] == "computing density"

    class Stop(Exception):
        pass

    def cancel(message, fraction=None):
        raise Stop()

    with pytest.raises(Stop):
        density(x, y, None, g.x, g.y, 300.0, cancel)


def test_heatmap_analysis_result():
    load()
    rng = np.random.default_rng(3)
    lon = rng.uniform(*BBOX[0::2], 300)
    lat = rng.uniform(*BBOX[1::2], 300)
    lat[:50] = 40.739  # a crowd near the north edge
    price = rng.uniform(50, 300, 300)
    heat = REGISTRY["heatmap"]
    params = heat.parse({"cells": "30", "bandwidth": "150", "weight": "price"})
    out = heat.run(FakeInput(BBOX, lon=lon, lat=lat, price=price), params, progress_log()[1])
    grid = out["grid"]
    assert out["kind"] == "grid" and (grid["nx"], grid["ny"]) == grid_for_cells(BBOX, 30).shape[::-1]
    g = grid_for_cells(BBOX, 30)
    x, y = project(lon, lat, BBOX)
    ref = direct_density(x, y, price, g.x, g.y, 150.0)[::-1]
    assert np.allclose(grid["density"], ref, rtol=1e-6, atol=1e-9 * ref.max())
    assert np.allclose(grid["values"], ref / ref.max(), atol=1e-9)
    assert np.argmax(np.max(grid["values"], axis=1)) < 3  # the crowd is in the top (northern) rows
    orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)


# -- interpolate -------------------------------------------------------------

def surface_points(n=800, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 3000, n), rng.uniform(0, 3000, n)
    truth = lambda x, y: np.sin(x / 500) + np.cos(y / 700)  # noqa: E731
    return x, y, truth(x, y) + rng.normal(0, noise, n), truth


@pytest.mark.parametrize("model", ["knn", "svr"])
def test_interpolate_recovers_a_smooth_surface(model):
    x, y, v, truth = surface_points()
    gx, gy = np.linspace(100, 2900, 15), np.linspace(100, 2900, 12)
    calls, progress = progress_log()
    surface, report = fit_surface(x, y, v, gx, gy, model=model, log=False, folds=5, progress=progress)
    assert surface.shape == (12, 15)
    assert report["metrics"]["r2"] >= 0.9
    assert report["metrics"]["rmse"] < 0.5 * report["baseline"]["rmse"]
    assert abs(report["baseline"]["r2"]) < 0.05  # the mean explains nothing
    gxx, gyy = np.meshgrid(gx, gy)
    assert np.sqrt(np.mean((surface - truth(gxx, gyy)) ** 2)) < 0.2
    n = 8 if model == "knn" else 6  # the declared grids: 4 x 2 and 2 x 3
    trains = [m for m, _ in calls if m.startswith("training model")]
    assert len(trains) == n and trains[0].startswith(f"training model 1/{n}: ")
    assert len(report["candidates"]) == n
    best = min(report["candidates"], key=lambda c: c["cv_rmse"])
    assert best["params"] == report["model"]["params"] and report["model"]["name"] == model


def test_interpolate_log_scale_and_dropped_rows():
    x, y, v, _ = surface_points(n=400, seed=1)
    price = np.exp(1.5 * v) * 50
    price[:5] = np.nan
    price[5:8] = -1.0
    price[8] = 0.0
    xx, yy = np.meshgrid(np.linspace(0, 3000, 8), np.linspace(0, 3000, 6))
    surface, report = fit_surface(x, y, price, xx, yy, model="knn", log=True, folds=3)
    assert surface.shape == (6, 8) and np.all(surface > -1)
    assert report["trained_on"] == 400 - 8 and report["log"] is True
    assert any("negative" in n for n in report["notes"])
    assert report["metrics"]["rmse"] < report["baseline"]["rmse"]
    with pytest.raises(ValueError):
        fit_surface(x[:5], y[:5], v[:5], xx, yy, model="knn", log=False)


def test_interpolate_analysis_result():
    load()
    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(*BBOX[0::2], 300), rng.uniform(*BBOX[1::2], 300)
    x, y = project(lon, lat, BBOX)
    price = 100 + 40 * np.sin(x / 800) + rng.normal(0, 2, 300)
    interp = REGISTRY["interpolate"]
    params = interp.parse({"model": "knn", "cells": "12", "folds": "3"})
    out = interp.run(FakeInput(BBOX, lon=lon, lat=lat, price=price), params, progress_log()[1])
    assert out["kind"] == "grid" and out["field"] == "price" and out["trained_on"] == 300
    assert len(out["grid"]["predicted"]) == out["grid"]["ny"]
    assert min(map(min, out["grid"]["values"])) == 0 and max(map(max, out["grid"]["values"])) == 1
    assert out["metrics"]["r2"] > 0.8
    orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)


# -- clusters ----------------------------------------------------------------

def blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = [(-74.01, 40.71), (-73.99, 40.73), (-73.97, 40.715)]
    lon = np.concatenate([rng.normal(cx, 0.0015, 120) for cx, _ in centres] + [rng.uniform(*BBOX[0::2], 40)])
    lat = np.concatenate([rng.normal(cy, 0.0012, 120) for _, cy in centres] + [rng.uniform(*BBOX[1::2], 40)])
    return lon, lat


def inside_ring(ring, pts, tol=1e-12):
    ring = np.asarray(ring)
    a, b = ring[:-1], ring[1:]
    edge = b - a
    rel = pts[:, None, :] - a[None, :, :]
    cross = edge[None, :, 0] * rel[:, :, 1] - edge[None, :, 1] * rel[:, :, 0]
    return np.all(cross >= -tol, axis=1) | np.all(cross <= tol, axis=1)


@pytest.mark.parametrize("method", ["dbscan", "kmeans"])
def test_clusters_equal_sklearn_on_projected_points(method):
    load()
    lon, lat = blobs()
    xy = np.column_stack(project(lon, lat, BBOX))
    if method == "dbscan":
        ref = DBSCAN(eps=150.0, min_samples=8).fit_predict(xy)
    else:
        ref = KMeans(n_clusters=4, n_init=10, random_state=0).fit_predict(xy)
    params = REGISTRY["clusters"].parse({"method": method, "eps": "150", "min_points": "8", "k": "4"})
    out = REGISTRY["clusters"].run(FakeInput(BBOX, lon=lon, lat=lat), params, progress_log()[1])
    assert np.array_equal(out["points"]["label"], ref)
    assert out["noise"] == int((ref == -1).sum())
    assert sorted(c["label"] for c in out["clusters"]) == sorted(set(ref.tolist()) - {-1})
    for c in out["clusters"]:
        member = ref == c["label"]
        assert c["size"] == member.sum()
        ring = c["hull"]
        assert ring[0] == ring[-1] and len(ring) >= 4
        assert inside_ring(ring, np.column_stack([lon[member], lat[member]])).all()
        assert {tuple(p) for p in ring} <= set(zip(lon[member].tolist(), lat[member].tolist()))
    orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)


def test_hull_of_few_or_collinear_points():
    assert clusters_mod.hull(np.array([1.0]), np.array([2.0])) == [[1.0, 2.0]]
    assert clusters_mod.hull(np.array([1.0, 3.0, 1.0]), np.array([2.0, 4.0, 2.0])) == [[1.0, 2.0], [3.0, 4.0]]
    line = clusters_mod.hull(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0, 3.0]))
    assert sorted(line) == [[0.0, 0.0], [3.0, 3.0]]
    square = clusters_mod.hull(np.array([0.0, 1.0, 1.0, 0.0, 0.5]), np.array([0.0, 0.0, 1.0, 1.0, 0.5]))
    assert len(square) == 5 and square[0] == square[-1] and [0.5, 0.5] not in square


# -- network -----------------------------------------------------------------

def visits(seed=0, users=25, places=30, n=300):
    rng = np.random.default_rng(seed)
    u = np.array([f"u{v}" for v in rng.integers(0, users, n)], dtype=object)
    p = np.array([f"p{v}" for v in rng.integers(0, places, n)], dtype=object)
    return u, p


def brute_force_pairs(users, places, min_shared):
    seen = {}
    for u, p in zip(users, places):
        seen.setdefault(p, set()).add(u)
    out = {}
    for a, b in itertools.combinations(sorted(seen), 2):
        shared = len(seen[a] & seen[b])
        if shared >= min_shared:
            out[(a, b)] = shared
    return out


@pytest.fixture(scope="module")
def visits_store(tmp_path_factory):
    """visits() as a check-in layer of a DuckDB store."""
    from citystack.stores import open_store, open_writer

    users, places = visits()
    path = str(tmp_path_factory.mktemp("covisits") / "v.duckdb")
    rows = ", ".join("(?, ?, ?)" for _ in users)
    values = [v for k, (u, p) in enumerate(zip(users, places)) for v in (k, u, p)]
    with open_writer(path) as staging:
        staging.publish("visits", "checkins", "SELECT k AS id, 114.0 + k / 1000 AS lon, 22.5 AS lat, u AS \"user\", "
                        f"p AS place, 0 AS day, 12 AS hour FROM (VALUES {rows}) v(k, u, p)", values)
    store = open_store(path)
    yield store, users, places
    store.close()


@pytest.mark.parametrize("min_shared", [1, 2, 3])
def test_covisits_equal_brute_force(visits_store, min_shared):
    from citystack.stores import View

    store, users, places = visits_store
    pairs = store.covisits("visits", View(), min_shared)
    a, b, w = pairs["a"], pairs["b"], pairs["weight"]
    ref = brute_force_pairs(users, places, min_shared)
    assert dict(zip(zip(a.tolist(), b.tolist()), w.tolist())) == ref
    assert list(zip(a.tolist(), b.tolist())) == sorted(ref)  # ordered by a, b with a < b


def test_build_network_equals_brute_force():
    users, places = visits(seed=1)
    ref = brute_force_pairs(users, places, 2)
    a = np.array([k[0] for k in ref], dtype=object)
    b = np.array([k[1] for k in ref], dtype=object)
    w = np.array(list(ref.values()))
    ids = sorted(set(places.tolist()))
    info = {"id": np.array(ids, dtype=object), "lon": np.arange(len(ids)) * 0.01,
            "lat": np.arange(len(ids)) * -0.01, "name": np.array([f"Place {i}" for i in ids], dtype=object),
            "category": np.array(["Cafe"] * len(ids), dtype=object)}
    out = network_mod.build_network(a, b, w, info)
    assert [((e["source"], e["target"]), e["weight"]) for e in out["edges"]] == list(ref.items())
    graph = nx.Graph()
    graph.add_weighted_edges_from((p, q, v) for (p, q), v in ref.items())
    exact = nx.betweenness_centrality(graph, normalized=True)
    for node in out["nodes"]:
        pid = node["id"]
        assert node["links"] == sum(1 for k in ref if pid in k)
        assert node["weighted_degree"] == sum(v for k, v in ref.items() if pid in k)
        assert node["betweenness"] == pytest.approx(exact[pid], abs=1e-12)
        i = ids.index(pid)
        assert (node["name"], node["category"], node["lon"], node["lat"]) == (
            f"Place {pid}", "Cafe", info["lon"][i], info["lat"][i])
    assert out["betweenness"]["sampled"] is False
    orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)


@pytest.mark.parametrize("seed", [2, 3])
def test_betweenness_equals_networkx(seed):
    graph = nx.gnm_random_graph(300, 500, seed=seed)  # sparse: several components, some isolated nodes
    graph.add_edges_from([(1000, 1001), (1001, 1002)])
    values, how = network_mod.betweenness(graph)
    exact = nx.betweenness_centrality(graph)
    assert how["sampled"] is False and nx.number_connected_components(graph) > 1
    assert all(values[k] == pytest.approx(exact[k], abs=1e-12) for k in exact)


# -- registry ----------------------------------------------------------------

def test_builtins_register_with_their_parameters():
    load()
    assert {"heatmap", "interpolate", "clusters", "network"} <= set(REGISTRY)
    assert REGISTRY["interpolate"].kinds == ("points",) and REGISTRY["network"].kinds == ("checkins",)
    assert REGISTRY["heatmap"].parse({}) == {"bandwidth": 300.0, "cells": 100, "cell_size": None,
                                             "weight": None, "min_count": 0, "min_users": 0}
    assert REGISTRY["interpolate"].parse({})["model"] == "svr"
    assert REGISTRY["clusters"].parse({})["method"] == "dbscan"
    assert REGISTRY["network"].parse({}) == {"min_shared": 2}
