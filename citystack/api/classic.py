"""The 2015 routes, answered as the 2015 server did, for clients written
against that stack.

``/getData/`` takes the view as ``lat1, lat2, lng1, lng2`` and answers a
FeatureCollection whose Point coordinates are **[lat, lng]** (the 2015
client's order, not GeoJSON's). ``/eventSource/`` streams the status lines
those requests post while they work.
"""

from __future__ import annotations

import numpy as np
from flask import Blueprint, Response, request

from ..analyses.heatmap import density
from ..analyses.interpolate import fit_surface
from ..analyses.pixels import PixelGrid
from .. import checks
from ..checks import BadParam
from ..state import state as shared_state
from ..events import sse
from ..events.broadcast import event_stream
from ..stores.base import View
from . import params
from .peer import gone_check
from .respond import json_response

bp = Blueprint("classic", __name__)


@bp.route("/getData/", strict_slashes=False)
def get_data():
    state = shared_state()
    conf, db, status = state.settings, state.store, state.broadcaster.publish
    args = request.args
    lat1, lat2 = (params.number(args, k, lo=-90, hi=90) for k in ("lat1", "lat2"))
    lng1, lng2 = (params.number(args, k, lo=-180, hi=180) for k in ("lng1", "lng2"))
    view = View(bbox=(min(lng1, lng2), min(lat1, lat2), max(lng1, lng2), max(lat1, lat2)))
    analysis = _analysis_request(args)
    info = db.layer(conf.classic_layer)
    status("starting data query...")
    try:
        if info.kind == "checkins":
            out = checkin_collection(db, info, view)
            status(f"{len(out['features'])} places with links, {len(out['lines'])} lines")
            return json_response(out)
        name_f, price_f = info.field(conf.classic_name_field).name, info.field(conf.classic_price_field).name
        cols = db.features(info.name, view, [name_f, price_f], conf.max_limit)
        status(f"{len(cols['id'])} points returned")
        out = classic_collection(cols, name_f, price_f)
        if analysis:
            status("starting analysis...")
            grid = PixelGrid(view.bbox, *analysis[:3])
            out["analysis"] = analysis_cells(analysis[3], grid, cols, price_f, status)
        return json_response(out)
    finally:
        status("idle")


def _analysis_request(args):
    """(w, h, cell_size, type) when the request asks for an analysis, else None."""
    if not checks.boolean(params.get(args, "analysis") or "false", "analysis"):
        return None
    kind = checks.choice(params.get(args, "analysisType") or "heatmap", "analysisType", ("heatmap", "interp"))
    w = params.integer(args, "w", lo=1, hi=10_000)
    h = params.integer(args, "h", lo=1, hi=10_000)
    cell = params.integer(args, "cell_size", lo=2, hi=2_000)
    if w < cell or h < cell:
        raise BadParam("cell_size", f"a {cell} px cell does not fit a {w} x {h} px window")
    return w, h, cell, kind


def analysis_cells(kind: str, grid: PixelGrid, cols, price_field: str, status) -> list[dict]:
    """The 2015 analysis: a heat map of the points, or an interpolated price surface."""
    x, y = grid.proj.forward(cols["lon"], cols["lat"])
    if kind == "heatmap":
        return grid.cells(density(x, y, None, grid.x, grid.y, grid.cell_m))
    price = np.asarray(cols[price_field], dtype=float)
    if np.isfinite(price).sum() < 10:
        return grid.cells(np.full((grid.ny, grid.nx), np.nan))
    gx, gy = grid.mesh_m()
    surface, _ = fit_surface(x, y, price, gx, gy, model="svr", log=True, max_train=1000,
                             progress=lambda message, fraction=None: status(f"training model: {message}"))
    return grid.cells(surface, "range")


def checkin_collection(db, info, view) -> dict:
    """As the 2015 check-in server: places in view with at least one link (more
    than one shared user), scored by their number of links, and the links."""
    pairs = db.covisits(info.name, view, 2)
    a, b = pairs["a"].tolist(), pairs["b"].tolist()
    ids = sorted(set(a) | set(b))
    places = {}
    if ids:
        cols = db.columns(info.places, View(bbox=view.bbox), ["id", "lon", "lat", "name", "category"])
        places = {pid: (lat, lon, name, cat) for pid, lon, lat, name, cat in
                  zip(cols["id"].tolist(), cols["lon"].tolist(), cols["lat"].tolist(),
                      cols["name"].tolist(), cols["category"].tolist())}
    score: dict = {}
    for p, q in zip(a, b):
        score[p] = score.get(p, 0) + 1
        score[q] = score.get(q, 0) + 1
    features = [{"type": "Feature", "id": pid,
                 "properties": {"name": places[pid][2], "cat": places[pid][3], "score": score[pid]},
                 "geometry": {"type": "Point", "coordinates": [places[pid][0], places[pid][1]]}}
                for pid in ids if pid in places]
    lines = [{"from": p, "to": q, "coordinates": [*places[p][:2], *places[q][:2]]}
             for p, q in zip(a, b) if p in places and q in places]
    return {"type": "FeatureCollection", "features": features, "lines": lines}


def classic_collection(cols, name_field: str, price_field: str) -> dict:
    price = np.asarray(cols[price_field], dtype=float)
    finite = np.isfinite(price)
    norm = np.zeros_like(price)
    if finite.any():
        lo, hi = price[finite].min(), price[finite].max()
        norm = (price - lo) / (hi - lo) if hi > lo else np.where(finite, 0.0, np.nan)
    ids, lat, lon = cols["id"].tolist(), cols["lat"].tolist(), cols["lon"].tolist()
    names = cols[name_field].tolist()
    prices = [v if f else None for v, f in zip(cols[price_field].tolist(), finite.tolist())]
    norms = [v if f else None for v, f in zip(norm.tolist(), finite.tolist())]
    features = [
        {"type": "Feature", "id": ids[i],
         "properties": {"name": names[i], "price": prices[i], "priceNorm": norms[i]},
         "geometry": {"type": "Point", "coordinates": [lat[i], lon[i]]}}
        for i in range(len(ids))
    ]
    return {"type": "FeatureCollection", "features": features}


@bp.route("/eventSource/", strict_slashes=False)
def event_source():
    """Status lines, with ids: a browser that reconnects sends the last it saw
    as ``Last-Event-ID`` and gets what it missed (events/broadcast.py)."""
    state = shared_state()
    lines = event_stream(state.broadcaster, state.settings.heartbeat, request.headers.get("Last-Event-ID"),
                         gone_check(request.environ))
    return Response(lines, mimetype=sse.MIMETYPE, headers=sse.HEADERS)
