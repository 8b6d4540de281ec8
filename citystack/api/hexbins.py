"""Bins with a shape and privacy thresholds: ``GET /api/layers/{layer}/bins``.

``shape=square`` (the default) is the grid of stores' ``bins``; ``shape=h3``
counts points by H3 cell at ``resolution`` (0-15; when not given, the finest
at which the view holds at most about 4,000 cells). Both take the same
statistics (``field``: mean, min, max) and filters, and both withhold cells
below ``min_count`` points or, on check-in layers, ``min_users`` distinct
users (analyses/privacy.py): such cells are not sent, and ``withheld``
counts them.
"""

from __future__ import annotations

import numpy as np

from .. import checks
from ..analyses import hexagons
from ..analyses.privacy import thresholds, user_field, withheld
from ..stores.base import View
from . import params
from .geojson import bins_collection
from .respond import respond

SHAPES = ("square", "h3")


def shape_of(args) -> str:
    return checks.choice(params.get(args, "shape") or "square", "shape", SHAPES)


def wanted(args, info, settings) -> bool:
    """Whether a bins request is this module's: hexagons, or thresholds in force."""
    if shape_of(args) != "square":
        return True
    count, users = _thresholds(args, info, settings)
    return bool(count or users)


def _thresholds(args, info, settings) -> tuple[int, int]:
    return thresholds(info, settings, params.integer(args, "min_count", 0, 0),
                      params.integer(args, "min_users", 0, 0))


def bins(db, settings, info, args, view: View, cells: int, field: str | None):
    shape = shape_of(args)
    min_count, min_users = _thresholds(args, info, settings)
    user = user_field(info) if min_users else None
    bbox = view.bbox or tuple(info.extent or (0, 0, 1, 1))
    res = None
    if shape == "h3":
        given = params.get(args, "resolution")
        res = checks.integer(given, "resolution", 0, hexagons.MAX_RESOLUTION) if given else \
            hexagons.resolution_for(bbox)

    def work(progress):
        progress(f"binning {info.name}", 0.1)
        if shape == "h3":
            out = _hexagons(db, info, view, res, field, user, min_count, min_users, progress)
        else:
            out = _squares(db, info, view, bbox, cells, field, user, min_count, min_users)
        out.update(layer=info.name, field=field, shape=shape, min_count=min_count, min_users=min_users)
        return out

    return respond(work, mimetype="application/geo+json")


def _hexagons(db, info, view, res, field, user, min_count, min_users, progress) -> dict:
    names = ["lon", "lat"] + [n for n in (field, user) if n]
    cols = db.columns(info.name, view, list(dict.fromkeys(names)))
    progress(f"{len(cols['lon'])} points to H3 cells", 0.4)
    uniq, inv = hexagons.cell_groups(cols["lon"], cols["lat"], res)
    agg = hexagons.aggregate(uniq, inv, cols[field] if field else None, cols[user] if user else None)
    hide = withheld(agg["count"], agg.get("users"), min_count, min_users)
    keep = ~hide
    shapes = hexagons.polygons(agg["cell"][keep])
    stats = {k: agg[k][keep] for k in ("mean", "min", "max") if k in agg}
    count = agg["count"][keep].tolist()
    features = []
    for n, (c, geom) in enumerate(zip(agg["cell"][keep].tolist(), shapes)):
        props = {"h3": format(c, "x"), "count": count[n]}
        for k, v in stats.items():
            value = float(v[n])
            props[k] = None if np.isnan(value) else value
        if "users" in agg:
            props["users"] = int(agg["users"][keep][n])
        features.append({"type": "Feature", "id": format(c, "x"), "geometry": geom, "properties": props})
    return {"type": "FeatureCollection", "features": features, "numberReturned": len(features),
            "resolution": res, "total": int(sum(count)), "withheld": int(hide.sum())}


def _squares(db, info, view, bbox, cells, field, user, min_count, min_users) -> dict:
    got = db.bins(info.name, view, cells, field)
    users = None
    if user:  # distinct users per cell: the same cell formula as the stores' SQL, in numpy
        minx, miny, maxx, maxy = (float(v) for v in got.bbox)
        dx, dy = (maxx - minx) / got.nx or 1e-12, (maxy - miny) / got.ny or 1e-12
        cols = db.columns(info.name, View(bbox=got.bbox, filters=view.filters, days=view.days, hours=view.hours,
                                          start=view.start, end=view.end), ["lon", "lat", user])
        i = np.minimum(np.floor((cols["lon"] - minx) / dx), got.nx - 1).astype(np.int64)
        j = np.minimum(np.floor((cols["lat"] - miny) / dy), got.ny - 1).astype(np.int64)
        per = hexagons.distinct_per_group(j * got.nx + i, got.nx * got.ny, cols[user])
        users = per[np.asarray(got.j, np.int64) * got.nx + np.asarray(got.i, np.int64)]
    hide = withheld(got.count, users, min_count, min_users)
    keep = ~hide
    got.i, got.j, got.count = got.i[keep], got.j[keep], got.count[keep]
    got.stats = {k: np.asarray(v)[keep] for k, v in got.stats.items()}
    out = bins_collection(got)
    if users is not None:
        for feat, u in zip(out["features"], users[keep].tolist()):
            feat["properties"]["users"] = u
    out.update(withheld=int(hide.sum()))  # how many cells; never how many points they held
    return out
