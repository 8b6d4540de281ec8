"""The analyses API: what analyses there are, and running one on a view."""

from __future__ import annotations

from flask import Blueprint, request

from ..analyses.registry import REGISTRY
from .. import checks
from ..checks import BadParam
from ..state import state
from . import params
from .errors import ApiError
from .respond import json_response, respond

bp = Blueprint("analyses", __name__)


@bp.get("/api/analyses")
def catalogue():
    return json_response({"analyses": [a.describe() for a in REGISTRY.values()]})


@bp.get("/api/analyses/<name>")
def run(name):
    shared = state()
    args = request.args
    if name not in REGISTRY:
        raise ApiError(404, "unknown analysis", f"no analysis named {name!r} "
                                                f"(analyses: {', '.join(sorted(REGISTRY))})")
    layer = params.get(args, "layer")
    if not layer:
        raise BadParam("layer", "required: the layer to analyse")
    # The analysis's own parameters first: a field named like one (a field "cells") is not a filter
    # here. Every other name is the view's (bbox, days, hours, from, to) or a field filter.
    own = {p.name for p in REGISTRY[name].params}
    raw = {k: checks.single(args, k) for k in args if k in own}
    analysis, info, values = shared.runner.prepare(name, layer, raw)
    view = params.view(args, info, own | {"layer"})
    shared.runner.admit(analysis, info, view, values)  # a full queue: 503 now, not inside a stream
    return respond(lambda progress: shared.runner.run_json(analysis, info, view, values, progress),
                   time_limit=shared.settings.analysis_time_limit)
