"""The ``flows`` analysis: trips counted between places.

A trip layer has a start position (the layer's ``lon``/``lat``) and an end
position (two numeric fields: ``end_lon``/``end_lat``, found by name when not
given: end_lng, end_lon, end_longitude / end_lat, end_latitude). Each end is
placed in an area of an areas layer (``by=areas``: the same rule as the
``areas`` analysis, a point on a shared boundary in the area listed first)
or in an H3 cell (``by=h3`` at ``resolution``). The answer: the ``top``
origin-destination pairs by count (origin != destination) with their mean
duration when the layer has start and end times (``start``/``end`` fields,
found by name: started_at / ended_at), self-loops (trips that end where they
began) apart, and the places with their trips out and in. Pairs with fewer
than ``min_count`` trips are withheld (counted in the summary). Trips with an
end in no place, or without an end position, are counted as ``unplaced``.
"""

from __future__ import annotations

import numpy as np

from ..stores.base import NUMERIC, View
from .registry import BadParam, Param, analysis

END_LON = ("end_lng", "end_lon", "end_longitude", "dropoff_longitude")
END_LAT = ("end_lat", "end_latitude", "dropoff_latitude")
STARTS = ("started_at", "start_time", "starttime", "pickup_datetime")
ENDS = ("ended_at", "end_time", "stoptime", "dropoff_datetime")


def _find(layer, given, names, what, numeric=True):
    fields = {f.name: f for f in layer.fields}
    if given:
        if given not in fields:
            raise BadParam(what, f"layer {layer.name!r} has no field {given!r}")
        return given
    for name in names:
        if name in fields and (fields[name].type == NUMERIC or not numeric):
            return name
    return None


def _seconds(values) -> np.ndarray:
    """Times (datetime64, or ISO text) as float seconds, NaN where missing."""
    arr = np.asarray(values)
    if arr.dtype.kind != "M":
        arr = np.where(np.equal(arr, None), "NaT", arr).astype("datetime64[s]")
    out = arr.astype("datetime64[s]").astype(np.float64)
    out[np.isnat(arr)] = np.nan
    return out


@analysis(
    name="flows",
    title="Flows",
    description="Trips between places (areas of an areas layer, or H3 cells): the top origin-destination "
                "pairs with counts and mean duration; self-loops apart.",
    params=[
        Param("by", "choice", "areas", choices=("areas", "h3"), help="places: areas of a layer, or H3 cells"),
        Param("areas", "str", help="the areas layer (by=areas)"),
        Param("resolution", "int", 8, 0, 15, help="H3 resolution (by=h3)"),
        Param("end_lon", "field", None, help="field of the trips' end longitude (found by name if not given)"),
        Param("end_lat", "field", None, help="field of the trips' end latitude (found by name if not given)"),
        Param("start", "field", None, numeric=False, help="start time field, for durations (found by name)"),
        Param("end", "field", None, numeric=False, help="end time field, for durations (found by name)"),
        Param("top", "int", 100, 1, 10000, help="pairs to answer, most trips first"),
        Param("min_count", "int", 0, 0, help="withhold pairs of fewer trips (privacy)"),
    ],
)
def flows(data, params, progress):
    layer = data.layer
    end_lon = _find(layer, params["end_lon"], END_LON, "end_lon")
    end_lat = _find(layer, params["end_lat"], END_LAT, "end_lat")
    if not end_lon or not end_lat:
        raise BadParam("end_lon" if not end_lon else "end_lat",
                       f"layer {layer.name!r} has no end position fields (name them with end_lon= and end_lat=)")
    t0 = _find(layer, params["start"], STARTS, "start", numeric=False)
    t1 = _find(layer, params["end"], ENDS, "end", numeric=False)
    names = ["lon", "lat", end_lon, end_lat] + ([t0, t1] if t0 and t1 else [])
    # Every trip in view, not a sample: counts must be exact.
    cols = data.store.columns(layer.name, data.view, list(dict.fromkeys(names)))
    progress(f"{len(cols['lon'])} trips: placing their ends", 0.2)
    x0, y0 = np.asarray(cols["lon"], float), np.asarray(cols["lat"], float)
    x1, y1 = np.asarray(cols[end_lon], float), np.asarray(cols[end_lat], float)
    if params["by"] == "areas":
        if not params["areas"]:
            raise BadParam("areas", "required with by=areas: the areas layer to place trips in")
        origin, dest, places = _by_areas(data.store, params["areas"], x0, y0, x1, y1)
    else:
        origin, dest, places = _by_h3(x0, y0, x1, y1, params["resolution"])
    duration = None
    if t0 and t1:
        duration = _seconds(cols[t1]) - _seconds(cols[t0])
    progress("counting pairs", 0.7)
    return result(origin, dest, duration, places, params["top"], params["min_count"], params["by"])


def _by_areas(store, areas, x0, y0, x1, y1):
    import shapely

    from ..stores.areas import assign, require_areas

    require_areas(store.layer(areas))
    shapes = store.area_features(areas, View())  # in _ord order: the first covering area wins
    geoms = shapely.from_wkb([bytes(w) for w in shapes["wkb"]])
    b = shapely.bounds(geoms)
    rows = {"_ord": np.arange(len(geoms)), "minlon": b[:, 0], "minlat": b[:, 1], "maxlon": b[:, 2],
            "maxlat": b[:, 3], "wkb": shapes["wkb"]}
    ends = np.isfinite(x1) & np.isfinite(y1)
    origin = assign(x0, y0, rows)
    dest = np.full(len(x1), -1, np.int64)
    dest[ends] = assign(x1[ends], y1[ends], rows)
    ids = shapes["id"].tolist()
    props = {k: v.tolist() for k, v in shapes["properties"].items()}
    places = [{"id": ids[k], "lon": float(shapes["lon"][k]), "lat": float(shapes["lat"][k]),
               "properties": {n: props[n][k] for n in props}} for k in range(len(ids))]
    return origin, dest, places


def _by_h3(x0, y0, x1, y1, res):
    import h3.api.numpy_int as h3n

    from .hexagons import cell_groups

    ends = np.isfinite(x1) & np.isfinite(y1) & np.isfinite(x0) & np.isfinite(y0)
    n = len(x0)
    lon = np.concatenate([x0[ends], x1[ends]])
    lat = np.concatenate([y0[ends], y1[ends]])
    uniq, inv = cell_groups(lon, lat, res)
    k = int(ends.sum())
    origin = np.full(n, -1, np.int64)
    dest = np.full(n, -1, np.int64)
    origin[ends], dest[ends] = inv[:k], inv[k:]
    places = []
    for c in uniq.tolist():
        lat_c, lon_c = h3n.cell_to_latlng(c)
        places.append({"id": format(c, "x"), "lon": lon_c, "lat": lat_c, "properties": {}})
    return origin, dest, places


def result(origin, dest, duration, places, top, min_count, by) -> dict:
    n = len(places)
    placed = (origin >= 0) & (dest >= 0)
    o, d = origin[placed], dest[placed]
    dur = duration[placed] if duration is not None else None
    pair = o * max(n, 1) + d
    codes, inv, counts = np.unique(pair, return_inverse=True, return_counts=True)
    mean = None
    if dur is not None:
        ok = np.isfinite(dur)
        sums = np.bincount(inv[ok], weights=dur[ok], minlength=len(codes))
        nd = np.bincount(inv[ok], minlength=len(codes))
        mean = np.where(nd > 0, sums / np.maximum(nd, 1), np.nan)
    po, pd = codes // max(n, 1), codes % max(n, 1)
    loop = po == pd
    keep = counts >= min_count
    withheld = int((~keep).sum())

    def rows(mask):
        idx = np.flatnonzero(mask & keep)
        idx = idx[np.lexsort((pd[idx], po[idx], -counts[idx]))][:top]
        out = []
        for k in idx.tolist():
            row = {"origin": places[po[k]]["id"], "destination": places[pd[k]]["id"], "count": int(counts[k])}
            if mean is not None:
                row["mean_duration_s"] = None if np.isnan(mean[k]) else float(mean[k])
            out.append(row)
        return out

    out_trips = np.bincount(o, minlength=n)
    in_trips = np.bincount(d, minlength=n)
    used = sorted(set(po.tolist()) | set(pd.tolist()))
    return {"kind": "flows", "by": by,
            "flows": rows(~loop), "self_loops": rows(loop),
            "places": [{**places[k], "out": int(out_trips[k]), "in": int(in_trips[k])} for k in used],
            "summary": {"trips": int(len(origin)), "placed": int(placed.sum()), "unplaced": int((~placed).sum()),
                        "pairs": int((~loop).sum()), "self_loop_trips": int(counts[loop].sum()),
                        "withheld": withheld, "min_count": min_count, "top": top}}
