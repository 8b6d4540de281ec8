"""H3 hexagon bins against h3.latlng_to_cell counted in Python, on both stores."""

from __future__ import annotations

import collections
import statistics

import h3
import pytest

BBOX = (114.03, 22.52, 114.09, 22.57)


def points(client, layer, **query):
    """Every point of the view, through the features API."""
    r = client.get(f"/api/layers/{layer}/features", query_string={"limit": 50000, **query})
    assert r.status_code == 200
    return [(f["geometry"]["coordinates"], f["properties"]) for f in r.get_json()["features"]]


def hexbins(client, layer, **query):
    r = client.get(f"/api/layers/{layer}/bins", query_string={"shape": "h3", **query})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


@pytest.mark.parametrize("res", [7, 9])
def test_h3_counts_equal_latlng_to_cell(client, res):
    want = collections.Counter(h3.latlng_to_cell(lat, lon, res) for (lon, lat), _ in points(client, "listings"))
    got = hexbins(client, "listings", resolution=res)
    assert got["resolution"] == res
    assert {f["properties"]["h3"]: f["properties"]["count"] for f in got["features"]} == want
    assert got["total"] == sum(want.values()) and got["withheld"] == 0


def test_h3_stats_filters_and_outlines(client):
    bbox = ",".join(map(str, BBOX))
    pts = points(client, "listings", bbox=bbox, room_type="Private room")
    prices = collections.defaultdict(list)
    for (lon, lat), p in pts:
        prices[h3.latlng_to_cell(lat, lon, 8)].append(p["price"])
    got = hexbins(client, "listings", resolution=8, bbox=bbox, room_type="Private room", field="price")
    assert {f["properties"]["h3"] for f in got["features"]} == set(prices)
    for f in got["features"]:
        p, values = f["properties"], prices[f["properties"]["h3"]]
        assert p["count"] == len(values)
        assert p["mean"] == pytest.approx(statistics.fmean(values))
        assert (p["min"], p["max"]) == (min(values), max(values))
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) == 7  # a hexagon, closed
        assert [[lng, lat] for lat, lng in h3.cell_to_boundary(p["h3"])] == ring[:-1]


def test_resolution_from_the_view(client):
    wide = hexbins(client, "listings")
    narrow = hexbins(client, "listings", bbox="114.05,22.54,114.06,22.55")
    assert narrow["resolution"] > wide["resolution"]
    # The view holds at most about 4,000 average cells at the chosen resolution, not at the next.
    from citystack.analyses.hexagons import bbox_km2

    km2 = bbox_km2((114.05, 22.54, 114.06, 22.55))
    assert km2 / h3.average_hexagon_area(narrow["resolution"], "km^2") <= 4000
    assert km2 / h3.average_hexagon_area(narrow["resolution"] + 1, "km^2") > 4000


@pytest.mark.parametrize("query, name", [({"resolution": "16"}, "resolution"), ({"resolution": "x"}, "resolution"),
                                         ({"shape": "hex"}, "shape"), ({"field": "name"}, "field")])
def test_bad_bins_requests(client, query, name):
    r = client.get("/api/layers/listings/bins", query_string={"shape": "h3", **query})
    assert r.status_code == 400 and r.get_json()["parameter"] == name


def test_square_stays_the_default(client):
    plain = client.get("/api/layers/listings/bins?cells=16").get_json()
    square = client.get("/api/layers/listings/bins?cells=16&shape=square").get_json()
    assert plain["features"] == square["features"] and "grid" in plain


def test_vectorized_cells_equal_latlng_to_cell_everywhere():
    """The lattice path (analyses/hexagons.py) against h3 itself: random points on the whole
    sphere (every face, near pentagons and face edges) and points on cell edges and corners."""
    import numpy as np

    from citystack.analyses.hexagons import cells

    rng = np.random.default_rng(7)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 20000)))
    lon = rng.uniform(-180, 180, 20000)
    corners = np.array([v for c in h3.grid_disk(h3.latlng_to_cell(22.54, 114.05, 9), 3)
                        for v in h3.cell_to_boundary(c)])
    mids = (corners + np.roll(corners, 1, axis=0)) / 2  # on (or a hair off) the edges
    lat = np.concatenate([lat, corners[:, 0], mids[:, 0]])
    lon = np.concatenate([lon, corners[:, 1], mids[:, 1]])
    for res in (0, 3, 8, 9, 12, 15):
        want = [h3.str_to_int(h3.latlng_to_cell(a, b, res)) for a, b in zip(lat.tolist(), lon.tolist())]
        assert cells(lon, lat, res).tolist() == want, res
        city = slice(20000, None)  # the city's points alone: the one-face path
        assert cells(lon[city], lat[city], res).tolist() == want[20000:], res
