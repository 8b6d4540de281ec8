"""Density images: per-pixel counts equal numpy.histogram2d of the same points and view,
exactly, points on inner and outer pixel edges included, with filters, on both stores;
statistics against numpy; the bin, JSON and PNG formats agree; limits are 400s."""

from __future__ import annotations

import io

import numpy as np
import pytest

import pointlayers

BBOX = (-74.013, 40.7011, -73.9017, 40.8003)
W, H = 97, 61


def edge_points(rng) -> tuple[np.ndarray, np.ndarray]:
    """Points on every pixel edge of BBOX at W x H (as numpy.linspace computes the edges) and
    one float step either side of each, the corners, points just outside, and random ones."""
    x0, y0, x1, y1 = BBOX
    ex, ey = np.linspace(x0, x1, W + 1), np.linspace(y0, y1, H + 1)
    around = lambda e: np.concatenate([e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf)])  # noqa: E731
    xs, ys = around(ex), around(ey)
    lon = [xs, rng.uniform(x0, x1, len(ys)), np.array([x0, x0, x1, x1]), ex[[0, 5, -1]]]
    lat = [rng.uniform(y0, y1, len(xs)), ys, np.array([y0, y1, y0, y1]), ey[[-1, 7, 0]]]
    lon.append(rng.uniform(x0 - 0.01, x1 + 0.01, 20_000))
    lat.append(rng.uniform(y0 - 0.01, y1 + 0.01, 20_000))
    return np.concatenate(lon), np.concatenate(lat)


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(11)
    lon, lat = edge_points(rng)
    n = len(lon)
    val = rng.normal(50, 20, n)
    val[rng.random(n) < 0.1] = np.nan
    grp = rng.choice(["a", "b", "c"], n)
    return {"id": np.arange(n), "lon": lon, "lat": lat, "val": val, "grp": grp}


@pytest.fixture(scope="module", params=["duckdb", "postgis"])
def client(request, tmp_path_factory, points):
    import pyarrow as pa

    from citystack.app import create_app
    from citystack.settings import Settings
    from citystack.stores import open_store

    folder = tmp_path_factory.mktemp("density_src")
    cols = dict(points)
    cols["val"] = pa.array(points["val"], mask=np.isnan(points["val"]))  # NULLs, not NaN
    layer = pointlayers.parquet_layer(folder, "dense", cols)
    db = pointlayers.database(request, tmp_path_factory, "density", {"dense": layer})
    store = open_store(db)
    yield create_app(Settings(db=db, analysis_processes=0), store).test_client()
    store.close()


def reference(points, bbox, keep=None, weights=None):
    """numpy.histogram2d of the points kept, as a north-row-first image (height x width)."""
    x, y = points["lon"], points["lat"]
    keep = np.ones(len(x), bool) if keep is None else keep
    h, _, _ = np.histogram2d(x[keep], y[keep], bins=[W, H], range=[[bbox[0], bbox[2]], [bbox[1], bbox[3]]],
                             weights=None if weights is None else weights[keep])
    return h.T[::-1]


def get_json(client, **query):
    response = client.get("/api/layers/dense/density", query_string={"width": W, "height": H, "format": "json",
                                                                     **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    out = response.get_json()
    assert (out["width"], out["height"]) == (W, H) and len(out["counts"]) == W * H
    return out


def counts(out) -> np.ndarray:
    return np.array(out["counts"]).reshape(H, W)


def test_counts_equal_histogram2d_with_points_on_edges(client, points):
    out = get_json(client, bbox=",".join(map(repr, BBOX)))
    want = reference(points, BBOX)
    assert out["bbox"] == list(BBOX)
    assert np.array_equal(counts(out), want)
    assert out["total"] == want.sum() and out["max"] == want.max()
    # The test means something: points lie on inner edges, on the far edges, and just outside.
    ex = np.linspace(BBOX[0], BBOX[2], W + 1)
    assert np.isin(points["lon"], ex[1:-1]).sum() >= W - 1 and (points["lon"] == BBOX[2]).sum() >= 3
    assert (points["lon"] > BBOX[2]).sum() > 0
    # ... and the plain formula floor((x - x0) / step) puts some of them in another pixel than numpy.
    x = points["lon"][(points["lon"] >= BBOX[0]) & (points["lon"] <= BBOX[2])]
    plain = np.minimum(np.floor((x - BBOX[0]) / ((BBOX[2] - BBOX[0]) / W)), W - 1)
    assert (plain != np.minimum(np.searchsorted(ex, x, side="right") - 1, W - 1)).sum() > 0


def test_default_view_is_the_layer_extent(client, points):
    extent = client.get("/api/layers/dense").get_json()["extent"]
    out = get_json(client)
    assert out["bbox"] == extent
    assert np.array_equal(counts(out), reference(points, extent))
    assert out["total"] == len(points["lon"])  # the far edges hold the easternmost and northernmost


@pytest.mark.parametrize("query", [{"grp": "a"}, {"val_min": "50"}, {"grp": "b", "val_max": "40.5"}],
                         ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items()))
def test_counts_follow_filters(client, points, query):
    keep = np.ones(len(points["lon"]), bool)
    val = points["val"]
    if "grp" in query:
        keep &= points["grp"] == query["grp"]
    if "val_min" in query:
        keep &= val >= float(query["val_min"])  # NaN (NULL) compares false, as in SQL
    if "val_max" in query:
        keep &= val <= float(query["val_max"])
    out = get_json(client, bbox=",".join(map(repr, BBOX)), **query)
    assert np.array_equal(counts(out), reference(points, BBOX, keep))


def test_statistics_against_numpy(client, points):
    bbox = ",".join(map(repr, BBOX))
    has = ~np.isnan(points["val"])
    n = reference(points, BBOX, has)
    total = reference(points, BBOX, has, np.nan_to_num(points["val"]))
    filled = n > 0
    for stat, want in (("mean", np.where(filled, total / np.maximum(n, 1), np.nan)),
                       ("sum", np.where(filled, total, np.nan))):
        out = get_json(client, bbox=bbox, field="val", stat=stat)
        got = np.array([np.nan if v is None else v for v in out["values"]]).reshape(H, W)
        assert np.array_equal(np.isnan(got), ~filled), stat
        assert np.allclose(got[filled], want[filled], rtol=1e-12, atol=1e-9), stat
        assert np.array_equal(counts(out), n)  # with a field: the points that have a value
    # min and max: exact, pixel by pixel
    x0, y0, x1, y1 = BBOX
    inside = has & (points["lon"] >= x0) & (points["lon"] <= x1) & (points["lat"] >= y0) & (points["lat"] <= y1)
    i = np.searchsorted(np.linspace(x0, x1, W + 1), points["lon"][inside], side="right") - 1
    j = np.searchsorted(np.linspace(y0, y1, H + 1), points["lat"][inside], side="right") - 1
    i, j = np.minimum(i, W - 1), np.minimum(j, H - 1)
    for stat, ufunc, start in (("min", np.minimum, np.inf), ("max", np.maximum, -np.inf)):
        want = np.full((H, W), start)
        ufunc.at(want, (H - 1 - j, i), points["val"][inside])
        want[want == start] = np.nan
        out = get_json(client, bbox=bbox, field="val", stat=stat)
        got = np.array([np.nan if v is None else v for v in out["values"]]).reshape(H, W)
        assert np.array_equal(got, want, equal_nan=True), stat


def test_formats_agree(client, points):
    from PIL import Image

    query = {"bbox": ",".join(map(repr, BBOX)), "width": W, "height": H, "grp": "c"}
    out = client.get("/api/layers/dense/density", query_string={**query, "format": "json"}).get_json()
    binary = client.get("/api/layers/dense/density", query_string=query)  # bin: the default
    assert binary.status_code == 200 and binary.mimetype == "application/octet-stream"
    h = binary.headers
    assert (int(h["X-Density-Width"]), int(h["X-Density-Height"])) == (W, H)
    assert [float(v) for v in h["X-Density-Bbox"].split(",")] == list(BBOX)
    assert h["X-Density-Dtype"] == "uint32" and h["X-Density-Stat"] == "count"
    assert int(h["X-Density-Total"]) == out["total"] and float(h["X-Density-Max"]) == out["max"]
    pixels = np.frombuffer(binary.get_data(), dtype="<u4")
    assert pixels.tolist() == out["counts"]
    png = client.get("/api/layers/dense/density", query_string={**query, "format": "png"})
    assert png.status_code == 200 and png.mimetype == "image/png"
    image = Image.open(io.BytesIO(png.get_data()))
    assert image.size == (W, H) and image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    assert np.array_equal(alpha > 0, counts(out) > 0)  # drawn exactly where there are points, north up
    # A statistic travels as float32, NaN where empty.
    mean = client.get("/api/layers/dense/density", query_string={**query, "field": "val", "stat": "mean"})
    assert mean.headers["X-Density-Dtype"] == "float32"
    got = np.frombuffer(mean.get_data(), dtype="<f4")
    want = client.get("/api/layers/dense/density",
                      query_string={**query, "field": "val", "stat": "mean", "format": "json"}).get_json()["values"]
    assert np.array_equal(got, np.array([np.nan if v is None else v for v in want], dtype=np.float32),
                          equal_nan=True)


@pytest.mark.parametrize("query, parameter", [
    ({"width": "4096", "height": "4096"}, "width"),  # 16.8M pixels: above the 4M cap
    ({"width": "0"}, "width"),
    ({"bbox": "-74,40.7,-74,40.8"}, "bbox"),  # no area
    ({"bbox": "-73,40.7,-74,40.8"}, "bbox"),  # min above max
    ({"bbox": "-74,40.7,-73.9"}, "bbox"),
    ({"stat": "mean"}, "field"),  # a statistic needs a field
    ({"field": "grp", "stat": "mean"}, "field"),  # text
    ({"stat": "median", "field": "val"}, "stat"),
    ({"format": "tiff"}, "format"),
    ({"nope": "1"}, "nope"),
])
def test_mistakes_are_400(client, query, parameter):
    response = client.get("/api/layers/dense/density", query_string=query)
    assert response.status_code == 400 and response.mimetype == "application/json"
    assert response.get_json()["parameter"] == parameter


def test_pixel_cap_is_a_setting(client):
    from citystack.app import create_app
    from citystack.settings import Settings

    app = client.application
    response = client.get("/api/layers/dense/density", query_string={"width": "2000", "height": "2000"})
    assert response.status_code == 200
    from citystack.state import state

    with app.app_context():
        shared = state()
        small = create_app(Settings(db=shared.settings.db, analysis_processes=0, density_max_pixels=100),
                           shared.store).test_client()
    assert small.get("/api/layers/dense/density", query_string={"width": "10", "height": "10"}).status_code == 200
    assert small.get("/api/layers/dense/density", query_string={"width": "11", "height": "10"}).status_code == 400
