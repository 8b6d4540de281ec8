"""The ``areas`` analysis: points aggregated by the polygons of an areas layer.

For each area in view (its bounding box meets the view's bbox) the points of
the layer under every filter of the request are counted, whole areas (not
cut at the bbox). A point belongs to one area: the one with the lowest
``_ord`` whose closed polygon (boundary included) covers it, so a point on
a shared boundary is counted once (stores/areas.py). Points in view that
fall in no area are counted in the summary (``outside``).

Each feature carries its area's properties, then ``count``, ``density``
(points per km² of geodesic area), ``area_km2``, and with ``field`` the
statistics ``mean``, ``median``, ``min``, ``max``, ``sum`` of it; ``value``
is the statistic asked for (``stat``). With ``stat=share`` and ``category``
(a text or bool field) ``share`` maps each value to its fraction of the
area's points. Areas with fewer than ``min_count`` points (the request's or
the server's CITYSTACK_MIN_COUNT, whichever is larger) are withheld: not
sent, counted in the summary's ``withheld``.
"""

from __future__ import annotations

import math

from ..stores.base import View
from .registry import BadParam, Param, analysis

STATS = ("count", "density", "mean", "median", "min", "max", "sum", "share")
FIELD_STATS = ("mean", "median", "min", "max", "sum")


def tolerance(simplify: float | None, zoom: int | None) -> float | None:
    """Degrees to simplify by: `simplify`, or about a pixel at web-map `zoom`."""
    if simplify:
        return float(simplify)
    if zoom is not None:
        return 360.0 / (256 * 2 ** int(zoom))
    return None


def geometries(wkb, tol: float | None) -> list:
    """GeoJSON geometry objects (as orjson Fragments) of WKB MultiPolygons, simplified
    by `tol` degrees (topology kept) when given."""
    import orjson
    import shapely

    geoms = shapely.from_wkb([bytes(w) for w in wkb])
    if tol:
        geoms = shapely.simplify(geoms, tol, preserve_topology=True)
    return [orjson.Fragment(shapely.to_geojson(g)) for g in geoms]


def _number(v):
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


@analysis(
    name="areas",
    title="Points by area",
    description="Counts and statistics of the points in view aggregated by the polygons of an areas layer "
                "(a point on a shared boundary counts for the area listed first).",
    params=[
        Param("areas", "str", help="the areas (polygon) layer to aggregate by"),
        Param("stat", "choice", "count", choices=STATS, help="the statistic shown as value"),
        Param("field", "field", None, help="numeric field for mean, median, min, max, sum"),
        Param("category", "field", None, numeric=False, help="field whose values' shares stat=share gives"),
        Param("min_count", "int", 0, 0, help="withhold areas with fewer points (privacy)"),
        Param("min_users", "int", 0, 0, help="withhold areas of fewer distinct users (check-in layers)"),
        Param("simplify", "float", None, 0, 1, help="simplify outlines by this many degrees"),
        Param("zoom", "int", None, 0, 24, help="simplify outlines for this web-map zoom"),
    ],
)
def areas(data, params, progress):
    if not params["areas"]:
        raise BadParam("areas", "required: the areas layer to aggregate by")
    stat, field, category = params["stat"], params["field"], params["category"]
    if stat in FIELD_STATS and not field:
        raise BadParam("field", f"stat={stat} needs a numeric field")
    if stat == "share" and not category:
        raise BadParam("category", "stat=share needs a category field")
    store, view = data.store, data.view
    progress(f"counting {data.layer.name} by {params['areas']}", 0.1)
    from .privacy import user_field

    users = user_field(data.layer) if params["min_users"] else None
    stats = store.area_stats(data.layer.name, view, params["areas"], field, category, users)
    progress("outlines", 0.7)
    shapes = store.area_features(params["areas"], View(bbox=view.bbox))
    return collection(shapes, stats, stat, field is not None, category is not None, params["min_count"],
                      tolerance(params["simplify"], params["zoom"]), data.layer.name, params["areas"],
                      params["min_users"])


def collection(shapes: dict, stats: dict, stat: str, with_field: bool, with_category: bool, min_count: int,
               tol: float | None, layer: str, areas_layer: str, min_users: int = 0) -> dict:
    """The FeatureCollection of the analysis (one feature per area in view)."""
    index = {int(i): k for k, i in enumerate(stats["id"].tolist())}
    geoms = geometries(shapes["wkb"], tol)
    props = {name: col.tolist() for name, col in shapes["properties"].items()}
    features, withheld, counted = [], 0, 0
    for row, ident in enumerate(shapes["id"].tolist()):
        k = index[int(ident)]
        count = int(stats["count"][k])
        counted += count
        if count < min_count or ("users" in stats and int(stats["users"][k]) < min_users):
            withheld += 1
            continue
        km2 = float(shapes["km2"][row])
        out = {name: values[row] for name, values in props.items()}
        out.update(count=count, area_km2=km2, density=count / km2 if km2 > 0 else None)
        if with_field:
            n = int(stats["n"][k])
            total = float(stats["sum"][k])
            out.update(mean=total / n if n else None, median=_number(stats["median"][k]),
                       min=_number(stats["min"][k]), max=_number(stats["max"][k]), sum=total, n=n)
        if with_category:
            shares = stats["share"][k]
            out["share"] = {v: c / count for v, c in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))} \
                if count else {}
        out["value"] = out.get(stat) if stat != "share" else None
        features.append({"type": "Feature", "id": int(ident), "geometry": geoms[row], "properties": out})
    values = [f["properties"]["value"] for f in features if f["properties"]["value"] is not None]
    summary = {"areas": len(shapes["id"]), "shown": len(features), "withheld": withheld, "min_count": min_count,
               "min_users": min_users,
               "in_areas": counted, "outside": int(stats["outside"]), "stat": stat,
               "min": min(values) if values else None, "max": max(values) if values else None,
               "boundary_rule": "a point on a shared boundary counts for the area with the lowest _ord "
                                "whose closed polygon covers it"}
    return {"type": "FeatureCollection", "features": features, "layer": layer, "areas": areas_layer,
            "summary": summary}


def counts_by_area(store, layer: str, view: View, areas_layer: str) -> dict[int, int]:
    """{area id: count} (for tests and the CLI)."""
    stats = store.area_stats(layer, view, areas_layer)
    return {int(i): int(c) for i, c in zip(stats["id"].tolist(), stats["count"].tolist())}
