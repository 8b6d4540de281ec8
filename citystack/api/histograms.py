"""Linked-chart histograms: the distributions of several fields for one view, each
chart leaving out its own filter (crossfilter), counted by the store."""

from __future__ import annotations

from flask import Blueprint, request

from ..checks import BadParam
from ..state import state
from ..stores.base import UnknownField
from ..stores.histograms import DEFAULT_BINS, DEFAULT_TOP, charts_for
from . import params
from .respond import respond

bp = Blueprint("histograms", __name__)
HISTOGRAM_PARAMS = {"fields", "bins", "top"}
MAX_BINS, MAX_TOP, MAX_CHARTS = 200, 1000, 30


def field_names(raw: str, known: list[str]) -> list[str]:
    """``fields=a,b,c``; a name that is a field's whole name wins over splitting it at commas."""
    if raw in known:
        return [raw]
    return [p.strip() for p in raw.split(",") if p.strip()]


@bp.get("/api/layers/<name>/histograms")
def histograms(name):
    db, args = state().store, request.args
    info = db.layer(name)
    view = params.view(args, info, HISTOGRAM_PARAMS)
    bins = params.integer(args, "bins", DEFAULT_BINS, 1, MAX_BINS)
    top = params.integer(args, "top", DEFAULT_TOP, 1, MAX_TOP)
    raw = params.get(args, "fields")
    if raw is None:
        raise BadParam("fields", "required: the fields to chart, comma-separated "
                                 f"(fields: {', '.join(info.field_names)})")
    charts = []
    for field in field_names(raw, info.field_names):
        try:
            charts += charts_for(info, field, bins, top)
        except UnknownField as exc:
            raise BadParam("fields", exc.detail) from None
    if not charts:
        raise BadParam("fields", "no field given")
    if len(charts) > MAX_CHARTS:
        raise BadParam("fields", f"{len(charts)} charts asked for; at most {MAX_CHARTS} at once")

    def work(progress):
        progress(f"counting {name}", 0.1)
        return db.histograms(name, view, charts)

    return respond(work)
