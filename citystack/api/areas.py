"""Areas layers through the layers API: their polygons as GeoJSON.

``GET /api/layers/{layer}/features`` of an areas layer answers its areas
whose bounding box meets ``bbox``, under the same field filters as points,
as MultiPolygon features, simplified by ``simplify=`` degrees or for the
web-map ``zoom=`` (about a pixel) when asked.
"""

from __future__ import annotations

from .. import checks
from ..analyses.areas import geometries, tolerance
from . import params
from .respond import respond

AREA_PARAMS = {"limit", "offset", "properties", "format", "simplify", "zoom"}


def features(db, conf, info, args):
    view = params.view(args, info, AREA_PARAMS)
    limit = params.integer(args, "limit", conf.default_limit, 1, conf.max_limit)
    offset = params.integer(args, "offset", 0, 0)
    checks.choice(params.get(args, "format") or "geojson", "format", ("geojson", "json"))  # both are GeoJSON
    simplify = params.get(args, "simplify")
    zoom = params.get(args, "zoom")
    tol = tolerance(checks.number(simplify, "simplify", 0, 1) if simplify else None,
                    checks.integer(zoom, "zoom", 0, 24) if zoom else None)
    props = params.properties(args, info)

    def work(progress):
        progress(f"querying {info.name}", 0.1)
        cols = db.area_features(info.name, view, limit, offset)
        geoms = geometries(cols["wkb"], tol)
        names = props if props is not None else list(cols["properties"])
        values = {n: cols["properties"][n].tolist() for n in names}
        km2 = cols["km2"].tolist()
        feats = [{"type": "Feature", "id": ident, "geometry": geoms[k],
                  "properties": {**{n: values[n][k] for n in names}, "area_km2": km2[k]}}
                 for k, ident in enumerate(cols["id"].tolist())]
        return {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats),
                "layer": info.name, "kind": "areas", "simplify": tol}

    return respond(work, mimetype="application/geo+json")
