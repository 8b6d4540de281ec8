"""Areas layers and the `areas` analysis, on the real polygons of ../shared/data,
against a brute-force count (the csv module and shapely's own covers test, not
citystack's code path), on both stores."""

from __future__ import annotations

import collections
import csv
import json
import statistics
import uuid

import numpy as np
import pytest

from conftest import SHARED, citystack, make_app, needs_shared

HOODS = SHARED / "nyc_neighbourhoods.geojson"
CHICAGO = SHARED / "chicago_community_areas.geojson"
DIVVY = SHARED / "divvy_chicago_2021-01.csv"
AIRBNB = SHARED / "AB_NYC_2019.csv"

pytestmark = [needs_shared(HOODS), needs_shared(CHICAGO), needs_shared(DIVVY), needs_shared(AIRBNB)]


# -- the reference: shapely's vectorized covers over the files themselves --------------------------

def polygons(path):
    """The file's polygons (invalid ones repaired, as the loader promises) and properties."""
    import shapely

    doc = json.loads(path.read_text())
    geoms = [shapely.make_valid(shapely.from_geojson(json.dumps(f["geometry"]))) for f in doc["features"]]
    return geoms, [f["properties"] for f in doc["features"]]


def brute(geoms, lon, lat):
    """For each polygon, which points it covers (boundary included): a bool matrix."""
    import shapely

    pts = shapely.points(lon, lat)
    return np.array([shapely.covers(g, pts) for g in geoms])


def read_csv(path, lon, lat):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows = [r for r in rows if r[lon] and r[lat]]
    return rows, np.array([float(r[lon]) for r in rows]), np.array([float(r[lat]) for r in rows])


@pytest.fixture(scope="module")
def nyc_reference():
    geoms, props = polygons(HOODS)
    rows, lon, lat = read_csv(AIRBNB, "longitude", "latitude")
    return geoms, props, rows, brute(geoms, lon, lat)


@pytest.fixture(scope="module")
def chicago_reference():
    geoms, props = polygons(CHICAGO)
    rows, lon, lat = read_csv(DIVVY, "start_lng", "start_lat")
    return geoms, props, rows, brute(geoms, lon, lat)


# -- the databases ---------------------------------------------------------------------------------

def fill(db):
    citystack("load", HOODS, "--layer", "hoods", "--db", db)
    citystack("load", AIRBNB, "--layer", "listings", "--preset", "airbnb", "--db", db)
    citystack("load", CHICAGO, "--layer", "community", "--db", db)
    citystack("load", DIVVY, "--layer", "trips", "--lat", "start_lat", "--lon", "start_lng", "--db", db)


@pytest.fixture(scope="module", params=["duckdb", "postgis"])
def areas_db(request, tmp_path_factory):
    if request.param == "duckdb":
        db = str(tmp_path_factory.mktemp("areas") / "areas.duckdb")
        fill(db)
        yield db
        return
    import psycopg

    cluster = request.getfixturevalue("pg_cluster")
    name = f"areas_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    db = cluster.url.rsplit("/", 1)[0] + "/" + name
    fill(db)
    yield db
    with psycopg.connect(cluster.url, autocommit=True) as con:
        con.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def api(areas_db):
    from citystack.stores import open_store

    store = open_store(areas_db)
    yield make_app(areas_db, store, analysis_processes=0).test_client()
    store.close()


def run(api, **query):
    name = "flows" if "top" in query else "areas"
    r = api.get(f"/api/analyses/{name}", query_string=query)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def by_id(result):
    return {f["id"]: f["properties"] for f in result["features"]}


# -- loading ---------------------------------------------------------------------------------------

def test_neighbourhoods_load_as_233_areas(api):
    layers = {i["name"]: i for i in api.get("/api/layers").get_json()["layers"]}
    assert layers["hoods"]["kind"] == "areas" and layers["hoods"]["count"] == 233
    assert [f["name"] for f in layers["hoods"]["fields"]] == ["neighbourhood", "neighbourhood_group"]
    assert layers["community"]["count"] == 77


def test_area_features_are_the_file_polygons(api, nyc_reference):
    import shapely

    geoms, props, _, _ = nyc_reference
    got = api.get("/api/layers/hoods/features").get_json()
    assert got["numberReturned"] == 233
    for f in got["features"]:
        k = f["id"] - 1  # ids number the features from 1, in file order
        assert f["properties"]["neighbourhood"] == props[k]["neighbourhood"]
        shape = shapely.from_geojson(json.dumps(f["geometry"]))
        assert shape.geom_type == "MultiPolygon"
        assert shapely.area(shapely.symmetric_difference(shape, geoms[k])) < 1e-12


def test_area_features_bbox_filters_and_simplify(api, nyc_reference):
    import shapely

    geoms, props, _, _ = nyc_reference
    bbox = (-73.99, 40.70, -73.95, 40.75)
    got = api.get("/api/layers/hoods/features", query_string={"bbox": ",".join(map(str, bbox)),
                                                              "neighbourhood_group": "Brooklyn"}).get_json()
    box = shapely.box(*bbox)
    want = {k + 1 for k, g in enumerate(geoms) if props[k]["neighbourhood_group"] == "Brooklyn"
            and shapely.intersects(shapely.box(*g.bounds), box)}
    assert {f["id"] for f in got["features"]} == want and want
    plain = api.get("/api/layers/hoods/features").get_json()
    rough = api.get("/api/layers/hoods/features?zoom=10").get_json()
    vertices = lambda fc: sum(shapely.get_num_coordinates(shapely.from_geojson(json.dumps(f["geometry"])))
                              for f in fc["features"])
    assert vertices(rough) < vertices(plain) / 2
    assert api.get("/api/layers/hoods/features?simplify=abc").status_code == 400


# -- the analysis against brute force --------------------------------------------------------------

def test_airbnb_counts_and_median_price_by_neighbourhood(api, nyc_reference):
    geoms, props, rows, covers = nyc_reference
    result = run(api, layer="listings", areas="hoods", field="price", stat="median")
    got = by_id(result)
    assert len(got) == 233
    many = covers.sum(axis=0) > 1
    prices = np.array([float(r["price"]) for r in rows])
    for k in range(len(geoms)):
        mine = covers[k] & ~many
        p = got[k + 1]
        assert covers[k].sum() >= p["count"] >= mine.sum(), props[k]
        if not (covers[k] & many).any():
            assert p["count"] == mine.sum()
            assert p["median"] == (statistics.median(prices[mine]) if mine.any() else None)
    assert sum(p["count"] for p in got.values()) == int(covers.any(axis=0).sum())
    assert result["summary"]["outside"] == int((~covers.any(axis=0)).sum())


def test_listings_neighbourhood_column_agrees(api, nyc_reference):
    """The listings' own neighbourhood column against the polygon each falls in (via shares)."""
    _, _, rows, _ = nyc_reference
    result = run(api, layer="listings", areas="hoods", stat="share", category="neighbourhood")
    agree = sum(round(p["count"] * p["share"].get(p["neighbourhood"], 0)) for p in by_id(result).values())
    figure = agree / len(rows)
    print(f"listings whose neighbourhood column names the polygon they fall in: {figure:.4f}")
    assert figure >= 0.95


def test_divvy_starts_by_community_area(api, areas_db, chicago_reference):
    from citystack.stores import open_store
    from citystack.stores.base import Filter, View

    geoms, props, rows, covers = chicago_reference
    many = covers.sum(axis=0) > 1
    got = by_id(run(api, layer="trips", areas="community"))
    electric = np.array([r["rideable_type"] == "electric_bike" for r in rows])
    # A field filter, through the store interface (the analyses API takes filters once issue 9's lands).
    stats = open_store(areas_db).area_stats("trips", View(filters=[Filter("rideable_type", "in", ("electric_bike",))]),
                                            "community")
    filtered = {int(i): {"count": int(c)} for i, c in zip(stats["id"], stats["count"])}
    for got, keep in ((got, np.ones(len(rows), bool)), (filtered, electric)):
        for k in range(len(geoms)):
            assert covers[k][keep].sum() >= got[k + 1]["count"] >= (covers[k] & ~many)[keep].sum()
        assert sum(p["count"] for p in got.values()) == int(covers[:, keep].any(axis=0).sum())


def test_bbox_view_density_and_withheld(api, nyc_reference):
    import shapely

    geoms, props, rows, covers = nyc_reference
    bbox = (-74.0, 40.70, -73.95, 40.74)
    full = by_id(run(api, layer="listings", areas="hoods"))
    result = run(api, layer="listings", areas="hoods", bbox=",".join(map(str, bbox)), min_count=50)
    box = shapely.box(*bbox)
    in_view = {k + 1 for k, g in enumerate(geoms) if shapely.intersects(shapely.box(*g.bounds), box)}
    counts = {k + 1: int(covers[k].sum()) for k in range(len(geoms)) if k + 1 in in_view}
    assert not (covers.sum(axis=0) > 1).any()  # no listing on a shared boundary: counts are exact
    shown = by_id(result)
    assert set(shown) == {a for a, c in counts.items() if c >= 50}
    assert result["summary"]["withheld"] == sum(1 for c in counts.values() if c < 50)
    for a, p in shown.items():
        assert p["count"] == counts[a]  # whole areas, not cut at the bbox
        assert p["density"] == pytest.approx(p["count"] / p["area_km2"])
        assert p["area_km2"] == pytest.approx(full[a]["area_km2"])


def test_area_km2_is_the_equal_area_measure(api, nyc_reference):
    """Each area's km² against its area in an equal-area projection (EPSG:6933)."""
    import pyproj
    import shapely

    geoms, _, _, _ = nyc_reference
    move = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
    got = {f["id"]: f["properties"]["area_km2"] for f in api.get("/api/layers/hoods/features").get_json()["features"]}
    for k, g in enumerate(geoms):
        km2 = shapely.transform(g, lambda xy: np.column_stack(move.transform(xy[:, 0], xy[:, 1]))).area / 1e6
        assert got[k + 1] == pytest.approx(km2, rel=2e-3)


def test_the_stores_agree(areas_db, request, tmp_path_factory):
    """DuckDB and PostGIS give the same counts and statistics (a bbox, a filter, shares)."""
    from citystack.stores import open_store
    from citystack.stores.base import Filter, View

    if "postgis" not in request.node.callspec.id:
        pytest.skip("compared once, from the postgis run")
    duck = str(tmp_path_factory.mktemp("agree") / "a.duckdb")
    fill(duck)
    view = View(bbox=(-74.02, 40.68, -73.90, 40.80), filters=[Filter("minimum_nights", "max", 30.0)])
    a = open_store(duck).area_stats("listings", view, "hoods", "price", "room_type")
    b = open_store(areas_db).area_stats("listings", view, "hoods", "price", "room_type")
    assert a["id"].tolist() == b["id"].tolist()
    for key in ("count", "n", "min", "max", "median"):
        assert np.array_equal(a[key], b[key], equal_nan=True), key
    assert np.allclose(a["sum"], b["sum"], rtol=1e-12)
    assert a["share"] == b["share"] and a["outside"] == b["outside"]


# -- bad input -------------------------------------------------------------------------------------

def square(x, y, d=0.01):
    return [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]


def collection(*geometries, crs=None):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": g, "properties": {"name": f"a{k}", "rank": k}} for k, g in enumerate(geometries)]}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return doc


def write(tmp_path, doc, name="areas.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture()
def small_db(tmp_path):
    db = tmp_path / "small.duckdb"
    citystack("load", write(tmp_path, collection({"type": "Polygon", "coordinates": [square(10, 10)]}), "one.geojson"),
              "--layer", "one", "--db", db)
    return db


def layers_json(db):
    return json.loads(citystack("layers", "--json", "--db", db).stdout)


def test_self_intersecting_ring_is_repaired_and_reported(tmp_path, small_db):
    import shapely

    from citystack.stores import open_store
    from citystack.stores.base import View

    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    good = {"type": "Polygon", "coordinates": [square(5, 5)]}
    out = citystack("load", write(tmp_path, collection(good, bowtie)), "--layer", "tie", "--db", small_db)
    assert "1 invalid geometry repaired (make_valid): feature 1" in out.stdout
    feats = open_store(str(small_db)).area_features("tie", View())
    tie = shapely.from_wkb(bytes(feats["wkb"][list(feats["id"]).index(2)]))
    assert tie.is_valid and len(shapely.get_parts(tie)) == 2 and tie.area == pytest.approx(0.5)


@pytest.mark.parametrize("bad, why", [
    ({"type": "Polygon", "coordinates": []}, "feature 1: empty geometry"),
    (None, "feature 1: no geometry"),
    ({"type": "Point", "coordinates": [1, 2]}, "feature 1: a Point, not a Polygon or MultiPolygon"),
])
def test_unusable_features_are_refused_or_skipped(tmp_path, small_db, bad, why):
    before = layers_json(small_db)
    path = write(tmp_path, collection({"type": "Polygon", "coordinates": [square(0, 0)]}, bad))
    proc = citystack("load", path, "--layer", "one", "--db", small_db, check=False)
    assert proc.returncode == 2 and why in proc.stderr and "--skip-invalid" in proc.stderr
    assert layers_json(small_db) == before  # nothing changed
    out = citystack("load", path, "--layer", "two", "--skip-invalid", "--db", small_db)
    assert "skipped" in out.stdout
    assert {i["name"]: i["count"] for i in layers_json(small_db)}["two"] == 1


def test_projected_crs_is_reprojected(tmp_path, small_db):
    import pyproj

    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32618", always_xy=True)
    ring = [list(to_utm.transform(x, y)) for x, y in square(-74.0, 40.7)]
    path = write(tmp_path, collection({"type": "Polygon", "coordinates": [ring]}, crs="urn:ogc:def:crs:EPSG::32618"))
    out = citystack("load", path, "--layer", "utm", "--db", small_db)
    assert "reprojected from EPSG:32618" in out.stdout
    extent = {i["name"]: i["extent"] for i in layers_json(small_db)}["utm"]
    assert extent == pytest.approx([-74.0, 40.7, -73.99, 40.71], abs=1e-6)


@pytest.mark.parametrize("crs, ring, why", [
    ("EPSG:999999", square(0, 0), "the file's CRS 'EPSG:999999' is not one citystack can reproject"),
    (None, square(583000, 4507000, 1000), "outside longitude/latitude ranges"),
])
def test_bad_crs_is_refused(tmp_path, small_db, crs, ring, why):
    before = layers_json(small_db)
    proc = citystack("load", write(tmp_path, collection({"type": "Polygon", "coordinates": [ring]}, crs=crs)),
                     "--layer", "one", "--db", small_db, check=False)
    assert proc.returncode == 2 and why in proc.stderr, proc.stderr
    assert layers_json(small_db) == before


def test_geoparquet_and_geopackage_load(tmp_path, small_db):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    geoms, props = polygons(CHICAGO)
    wkb = [shapely.to_wkb(g) for g in geoms]
    table = pa.table({"community": [p["community"] for p in props], "geometry": pa.array(wkb, pa.binary())})
    meta = {"version": "1.0.0", "primary_column": "geometry",
            "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["MultiPolygon"]}}}
    pq.write_table(table.replace_schema_metadata({"geo": json.dumps(meta)}), tmp_path / "c.parquet")
    citystack("load", tmp_path / "c.parquet", "--layer", "cpq", "--db", small_db)
    try:
        import pyogrio.raw
    except ImportError:
        pytest.skip("pyogrio is not installed")
    pyogrio.raw.write(str(tmp_path / "c.gpkg"), np.array(wkb, dtype=object),
                      [np.array([p["community"] for p in props], dtype=object)], fields=["community"],
                      geometry_type="MultiPolygon", crs="EPSG:4326", driver="GPKG")
    citystack("load", tmp_path / "c.gpkg", "--layer", "cgpkg", "--db", small_db)
    counts = {i["name"]: i["count"] for i in layers_json(small_db)}
    assert counts["cpq"] == counts["cgpkg"] == 77


def test_points_layer_as_areas_is_a_400(api):
    r = api.get("/api/analyses/areas?layer=listings&areas=listings")
    assert r.status_code == 400 and r.get_json()["parameter"] == "areas"
    assert api.get("/api/analyses/areas?layer=listings&areas=nosuch").status_code == 404
    assert api.get("/api/analyses/areas?layer=listings").status_code == 400
    assert api.get("/api/analyses/areas?layer=listings&areas=hoods&stat=median").status_code == 400
    assert api.get("/api/analyses/areas?layer=hoods&areas=hoods").status_code == 400


# -- flows -------------------------------------------------------------------------------------------

def test_divvy_flows_between_community_areas(api, chicago_reference):
    """Start-area to end-area trip counts and mean durations against brute force (self-loops apart)."""
    import datetime

    geoms, props, rows, covers = chicago_reference
    ends = [k for k, r in enumerate(rows) if r["end_lat"] and r["end_lng"]]
    end_cover = brute(geoms, np.array([float(rows[k]["end_lng"]) for k in ends]),
                      np.array([float(rows[k]["end_lat"]) for k in ends]))
    assert (covers.sum(axis=0) <= 1).all() and (end_cover.sum(axis=0) <= 1).all()  # no trip end on a boundary
    start_area = np.where(covers.any(axis=0), covers.argmax(axis=0), -1)
    pairs = collections.defaultdict(list)
    for n, k in enumerate(ends):
        a, b = start_area[k], end_cover[:, n].argmax() if end_cover[:, n].any() else -1
        if a >= 0 and b >= 0:
            t0, t1 = (datetime.datetime.fromisoformat(rows[k][c]) for c in ("started_at", "ended_at"))
            pairs[(a + 1, b + 1)].append((t1 - t0).total_seconds())
    got = run(api, layer="trips", areas="community", top=10000)
    answered = {(f["origin"], f["destination"]): f for f in got["flows"] + got["self_loops"]}
    assert {k: v["count"] for k, v in answered.items()} == {k: len(v) for k, v in pairs.items()}
    for k, v in pairs.items():
        assert answered[k]["mean_duration_s"] == pytest.approx(sum(v) / len(v))
    assert all(f["origin"] != f["destination"] for f in got["flows"])
    assert all(f["origin"] == f["destination"] for f in got["self_loops"])
    counts = [f["count"] for f in got["flows"]]
    assert counts == sorted(counts, reverse=True)
    assert got["summary"]["placed"] == sum(len(v) for v in pairs.values())
    top = run(api, layer="trips", areas="community", top=5, min_count=100)
    assert [(f["origin"], f["destination"]) for f in top["flows"]] == \
        [(f["origin"], f["destination"]) for f in got["flows"]][:5]
    assert top["summary"]["withheld"] == sum(1 for v in pairs.values() if len(v) < 100)
