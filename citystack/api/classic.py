"""The 2015 routes, answered as the 2015 server did, for clients written
against that stack.

``/getData/`` takes the view as ``lat1, lat2, lng1, lng2`` and answers a
FeatureCollection whose Point coordinates are **[lat, lng]** (the 2015
client's order, not GeoJSON's). ``/eventSource/`` streams the status lines
those requests post while they work.
"""

from __future__ import annotations

import numpy as np
from flask import Blueprint, Response, current_app, request

from ..broadcast import event_stream
from ..stores.base import View
from . import params
from .respond import json_response

bp = Blueprint("classic", __name__)


def _state():
    return current_app.extensions["citystack"]


@bp.route("/getData/", strict_slashes=False)
def get_data():
    state = _state()
    conf, db, status = state.settings, state.store, state.broadcaster.publish
    args = request.args
    lat1, lat2 = (params.number(args, k, lo=-90, hi=90) for k in ("lat1", "lat2"))
    lng1, lng2 = (params.number(args, k, lo=-180, hi=180) for k in ("lng1", "lng2"))
    view = View(bbox=(min(lng1, lng2), min(lat1, lat2), max(lng1, lng2), max(lat1, lat2)))
    info = db.layer(conf.classic_layer)
    status("starting data query...")
    try:
        name_f, price_f = info.field(conf.classic_name_field).name, info.field(conf.classic_price_field).name
        cols = db.features(info.name, view, [name_f, price_f], conf.max_limit)
        status(f"{len(cols['id'])} points returned")
        return json_response(classic_collection(cols, name_f, price_f))
    finally:
        status("idle")


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
    state = _state()
    return Response(event_stream(state.broadcaster, state.settings.heartbeat), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
