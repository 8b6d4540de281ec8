"""The 2015 routes, answered as the 2015 server did, for clients written
against that stack.

``/getData/`` takes the view as ``lat1, lat2, lng1, lng2`` and answers a
FeatureCollection whose Point coordinates are **[lat, lng]** (the 2015
client's order, not GeoJSON's). ``/eventSource/`` streams the status lines
those requests post while they work. The ``analysis`` grid is analysis work
like any other: at most MAX_CELLS cells, run by the runner (cache, slot,
time limit, a worker process that is stopped when the client leaves).
"""

from __future__ import annotations

import numpy as np
import orjson
from flask import Blueprint, Response, request

from ..analyses.grid import MAX_SIDE
from ..analyses.interpolate import fit_surface
from ..analyses.pixels import PixelGrid, heat
from ..analyses.runner import Task
from .. import checks
from ..checks import BadParam
from ..state import state as shared_state
from ..events import sse
from ..events.broadcast import event_stream
from ..events.progress import Progress
from ..stores.base import View
from . import params
from .peer import gone_check
from .respond import json_response

bp = Blueprint("classic", __name__)
MAX_CELLS = MAX_SIDE * MAX_SIDE  # 160,000: the heatmap analysis's largest grid


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
    version = db.data_version()  # before the query: what a cached analysis is keyed by
    status("starting data query...")
    try:
        if info.kind == "checkins":
            out = checkin_collection(db, info, view, conf.classic_category)
            status(f"{len(out['features'])} places with links, {len(out['lines'])} lines")
            return json_response(out)
        name_f, price_f = info.field(conf.classic_name_field).name, info.field(conf.classic_price_field).name
        cols = db.features(info.name, view, [name_f, price_f], conf.max_limit)
        status(f"{len(cols['id'])} points returned")
        out = classic_collection(cols, name_f, price_f)
        if analysis:
            status("starting analysis...")
            hidden = _withheld(state, info, args, analysis, view, cols)  # privacy: analyses/privacy.py
            out["analysis"] = _run_analysis(state, analysis, view, info, cols, price_f, version, hidden)
            if hidden is not None:
                out["withheld"] = int(len(hidden))
        return json_response(out)
    finally:
        status("idle")


def _withheld(state, info, args, analysis, view, cols):
    """The heat map's cells (list positions) below the min_count in force, or None."""
    from ..analyses.privacy import pixel_withheld, thresholds

    w, h, cell, kind = analysis
    min_count, _ = thresholds(info, state.settings, params.integer(args, "min_count", 0, 0), None)
    if kind != "heatmap" or not min_count:
        return None
    return np.flatnonzero(pixel_withheld(PixelGrid(view.bbox, w, h, cell), cols["lon"], cols["lat"], min_count))


def _run_analysis(state, analysis, view, info, cols, price_field, version, hidden=None) -> orjson.Fragment:
    """The analysis cells, through the runner like every analysis: cached, in
    a slot, in a worker process stopped at the time limit or when the client
    leaves; its progress lines go to the 2015 status stream."""
    w, h, cell, kind = analysis
    grid = PixelGrid(view.bbox, w, h, cell)
    inputs = {"lon": cols["lon"], "lat": cols["lat"], price_field: cols["properties"][price_field]}
    progress = Progress(lambda message, fraction: state.broadcaster.publish(message),
                        state.settings.analysis_time_limit, gone_check(request.environ))
    drop = None if hidden is None else tuple(hidden.tolist())
    key = ("classic", info.name, view.key(), w, h, cell, kind, price_field, state.settings.max_limit, drop)
    task = Task(analysis_cells, (kind, grid, inputs, price_field, drop))
    return orjson.Fragment(state.runner.call_json(key, task, progress, version))  # sent as the worker wrote it


def _analysis_request(args):
    """(w, h, cell_size, type) when the request asks for an analysis, else None;
    at most MAX_CELLS cells, as the heatmap analysis allows. The analysis
    parameters are checked whenever they are given, asked for or not."""
    wanted = checks.boolean(params.get(args, "analysis") or "false", "analysis")
    kind = checks.choice(params.get(args, "analysisType") or "heatmap", "analysisType", ("heatmap", "interp"))
    sizes = {k: params.get(args, k) for k in ("w", "h", "cell_size")}
    if not wanted and all(v is None for v in sizes.values()):
        return None
    w = params.integer(args, "w", None if wanted else 1, lo=1, hi=10_000)
    h = params.integer(args, "h", None if wanted else 1, lo=1, hi=10_000)
    cell = params.integer(args, "cell_size", None if wanted else 2, lo=2, hi=2_000)
    if wanted and (w < cell or h < cell):
        raise BadParam("cell_size", f"a {cell} px cell does not fit a {w} x {h} px window")
    cells = (w // cell) * (h // cell)
    if cells > MAX_CELLS:
        raise BadParam("cell_size", f"{cell} px cells over a {w} x {h} px window make {cells:,} cells; "
                                    f"at most {MAX_CELLS:,}: use larger cells")
    return (w, h, cell, kind) if wanted else None


def analysis_cells(kind: str, grid: PixelGrid, cols, price_field: str, drop, status=None) -> list[dict]:
    """The 2015 analysis: a heat map of the points (the 2015 kernel, stretched
    from minimum to maximum), or an interpolated price surface. A view with no
    width or height covers no ground: its analysis is an empty list.

    A unit of work for the runner: it runs in an analysis worker, so it takes
    only what pickles (the grid, numpy columns) and reports through `status`
    (a Progress: ``status(message, fraction=None)``)."""
    if grid.empty:
        return []
    if kind == "heatmap":
        cells = grid.cells(heat(grid, cols["lon"], cols["lat"]), "range")
        if drop:  # withheld (too few points): not sent
            gone = set(drop)
            cells = [c for k, c in enumerate(cells) if k not in gone]
        return cells
    x, y = grid.proj.forward(cols["lon"], cols["lat"])
    price = np.asarray(cols[price_field], dtype=float)
    if np.isfinite(price).sum() < 10:
        return grid.cells(np.full((grid.ny, grid.nx), np.nan))
    gx, gy = grid.mesh_m()
    surface, _ = fit_surface(x, y, price, gx, gy, model="svr", log=True, max_train=1000,
                             progress=lambda message, fraction=None: status(f"training model: {message}"))
    return grid.cells(surface, "range")


def checkin_collection(db, info, view, category: str = "") -> dict:
    """As the 2015 check-in server: places in view with at least one link (more
    than one shared user), scored by their number of links, and the links.
    With a `category`, only places of exactly that category and the links
    between two of them (the 2015 weibo server kept only ``Food/Drinks``)."""
    pairs = db.covisits(info.name, view, 2)
    a, b = pairs["a"].tolist(), pairs["b"].tolist()
    places = {}
    if a:
        cols = db.columns(info.places, View(bbox=view.bbox), ["id", "lon", "lat", "name", "category"])
        places = {pid: (lat, lon, name, cat) for pid, lon, lat, name, cat in
                  zip(cols["id"].tolist(), cols["lon"].tolist(), cols["lat"].tolist(),
                      cols["name"].tolist(), cols["category"].tolist())}
    if category:
        kept = {pid for pid, place in places.items() if place[3] == category}
        pairs_kept = [(p, q) for p, q in zip(a, b) if p in kept and q in kept]
        a, b = [p for p, _ in pairs_kept], [q for _, q in pairs_kept]
    ids = sorted(set(a) | set(b))
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
    price = np.asarray(cols["properties"][price_field], dtype=float)
    finite = np.isfinite(price)
    norm = np.zeros_like(price)
    if finite.any():
        lo, hi = price[finite].min(), price[finite].max()
        norm = (price - lo) / (hi - lo) if hi > lo else np.where(finite, 0.0, np.nan)
    ids, lat, lon = cols["id"].tolist(), cols["lat"].tolist(), cols["lon"].tolist()
    names = cols["properties"][name_field].tolist()
    prices = [v if f else None for v, f in zip(cols["properties"][price_field].tolist(), finite.tolist())]
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
