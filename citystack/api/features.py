"""The layers API: what layers there are, their features, and binned views."""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import checks
from ..state import state
from . import arrow, params
from .links import link, segment
from .geojson import bins_collection, feature_collection, to_csv
from .respond import json_response, respond

bp = Blueprint("features", __name__)
FEATURE_PARAMS = {"limit", "offset", "properties", "format"}
BIN_PARAMS = {"cells", "field", "shape", "resolution", "min_count", "min_users"}  # the last 4: api/hexbins.py


def store():
    return state().store


def settings():
    return state().settings


@bp.get("/api/health")
def health():
    """For load balancers and tests: the data version and open event streams."""
    shared = state()
    return json_response({"status": "ok", "store": shared.store.kind, "data_version": shared.store.data_version(),
                          "event_streams": shared.broadcaster.subscribers,
                          "analyses": shared.runner.status()})


@bp.get("/api/layers")
def layers():
    return json_response({"layers": [info.as_json() for info in store().layers()]})


@bp.get("/api/layers/<name>")
def layer(name):
    info = store().layer(name).as_json()
    info["links"] = [{"rel": "items", "href": link(f"/api/layers/{segment(name)}/features"),
                      "type": "application/geo+json"},
                     {"rel": "bins", "href": link(f"/api/layers/{segment(name)}/bins"),
                      "type": "application/geo+json"}]
    return json_response(info)


@bp.get("/api/layers/<name>/features")
def features(name):
    db, conf, args = store(), settings(), request.args
    info = db.layer(name)
    if info.kind == "areas":  # polygons: api/areas.py
        from .areas import features as area_features

        return area_features(db, conf, info, args)
    view = params.view(args, info, FEATURE_PARAMS)
    fmt = checks.choice(params.get(args, "format") or "geojson", "format", ("geojson", "json", "csv", "arrow"))
    limit = params.integer(args, "limit", conf.default_limit, 1,
                           conf.arrow_max_limit if fmt == "arrow" else conf.max_limit)
    offset = params.integer(args, "offset", 0, 0)
    props = params.properties(args, info)
    next_url = _next_link(name, args, offset + limit)
    if fmt == "arrow":  # api/arrow.py: the page's binary transport
        return arrow.features_response(db, info, view, props, limit, offset, next_url)

    if fmt == "csv":  # a file, never an event stream
        cols = db.features(name, view, props, limit, offset)
        return Response(to_csv(cols, limit, info), mimetype="text/csv",
                        headers={"Content-Disposition": f'inline; filename="{name}.csv"'})

    def work(progress):
        progress(f"querying {name}", 0.1)
        cols = db.features(name, view, props, limit + 1, offset)
        more = len(cols["id"]) > limit
        progress(f"{min(limit, len(cols['id']))} features", 0.8)
        out = feature_collection(cols, limit, info)
        out["layer"] = name
        out["links"] = [{"rel": "next", "href": next_url, "type": "application/geo+json"}] if more else []
        return out

    return respond(work, mimetype="application/geo+json")


@bp.get("/api/layers/<name>/bins")
def bins(name):
    db, args = store(), request.args
    info = db.layer(name)
    view = params.view(args, info, BIN_PARAMS)
    cells = params.integer(args, "cells", 64, 1, 512)
    field = params.numeric_field(args, info)

    from . import hexbins

    if hexbins.wanted(args, info, settings()):  # hexagons, or privacy thresholds in force
        return hexbins.bins(db, settings(), info, args, view, cells, field)

    def work(progress):
        progress(f"binning {name}", 0.1)
        out = bins_collection(db.bins(name, view, cells, field))
        out["layer"], out["field"] = name, field
        return out

    return respond(work, mimetype="application/geo+json")


def _next_link(name: str, args, offset: int) -> str:
    query = [(k, v) for k, v in args.items(multi=True) if k != "offset"] + [("offset", str(offset))]
    return link(f"/api/layers/{segment(name)}/features", query)
