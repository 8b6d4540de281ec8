"""Density images of a view, computed in the store: ``GET /api/layers/{layer}/density``.

``width`` x ``height`` pixels over the bbox (the layer's extent by default),
binned as ``numpy.histogram2d`` bins (stores/sql.py ``density``), with every
filter of the features route. Per pixel: the count of points, or with
``stat=mean|sum|min|max`` that statistic of the numeric ``field`` (``count``
with a field counts the points that have a value). Three formats:

- ``bin`` (the page's): the pixels as one little-endian array, row-major,
  north row first: uint32 counts, or float32 values (NaN where empty) for a
  statistic. Headers ``X-Density-Width``, ``X-Density-Height``,
  ``X-Density-Bbox`` (minlon,minlat,maxlon,maxlat), ``X-Density-Stat``,
  ``X-Density-Dtype`` (uint32 or float32), ``X-Density-Total`` (points counted)
  and ``X-Density-Max`` (the largest pixel);
- ``json``: ``{"width", "height", "bbox", "stat", "field", "total", "max",
  "counts": [...]}`` (same order), plus ``"values"`` (null where empty) for a
  statistic;
- ``png``: the image shaded on a log scale of the counts (a statistic: linear
  from its min to its max), empty pixels transparent.

``width * height`` is capped by CITYSTACK_DENSITY_MAX_PIXELS (400 beyond).
"""

from __future__ import annotations

import io

import numpy as np
from flask import Blueprint, Response, request

from .. import checks
from ..checks import BadParam
from ..state import state
from . import params
from .respond import json_response

bp = Blueprint("density", __name__)
DENSITY_PARAMS = {"width", "height", "field", "stat", "format"}
FORMATS = ("bin", "json", "png")
STATS = ("count", "mean", "sum", "min", "max")
MAX_SIDE = 8192
# The PNG's colours, low to high (a light-to-dark ramp that reads over map tiles).
RAMP = np.array([[255, 237, 160], [254, 178, 76], [240, 59, 32], [189, 0, 38], [90, 0, 60]], dtype=np.float64)


@bp.get("/api/layers/<name>/density")
def density(name):
    db, conf, args = state().store, state().settings, request.args
    info = db.layer(name)
    view = params.view(args, info, DENSITY_PARAMS)
    width = params.integer(args, "width", 256, 1, MAX_SIDE)
    height = params.integer(args, "height", 256, 1, MAX_SIDE)
    if width * height > conf.density_max_pixels:
        raise BadParam("width", f"{width} x {height} = {width * height:,} pixels: at most "
                                f"{conf.density_max_pixels:,} (CITYSTACK_DENSITY_MAX_PIXELS)")
    stat = checks.choice(params.get(args, "stat") or "count", "stat", STATS)
    fmt = checks.choice(params.get(args, "format") or "bin", "format", FORMATS)
    field = params.numeric_field(args, info)
    image = db.density(name, view, width, height, field, stat)
    data = image.counts if image.values is None else image.values
    total = int(image.counts.sum(dtype=np.int64))
    top = float(np.nanmax(data)) if data.size and not np.all(np.isnan(data.astype(np.float64))) else 0.0
    if fmt == "json":
        out = {"width": width, "height": height, "bbox": list(image.bbox), "stat": stat, "field": field,
               "total": total, "max": top, "counts": image.counts.ravel()}
        if image.values is not None:
            out["values"] = [None if v != v else v for v in image.values.ravel().tolist()]
        return json_response(out)
    headers = {"X-Density-Width": str(width), "X-Density-Height": str(height),
               "X-Density-Bbox": ",".join(repr(float(v)) for v in image.bbox), "X-Density-Stat": stat,
               "X-Density-Total": str(total), "X-Density-Max": repr(top)}
    if fmt == "png":
        return Response(png(image), mimetype="image/png", headers=headers)
    if image.values is None:
        body, dtype = image.counts.astype("<u4").tobytes(), "uint32"
    else:
        body, dtype = image.values.astype("<f4").tobytes(), "float32"
    headers["X-Density-Dtype"] = dtype
    return Response(body, mimetype="application/octet-stream", headers=headers)


def shade(image) -> np.ndarray:
    """RGBA pixels (height x width x 4, uint8): a log scale of the counts, or a linear scale
    of a statistic; empty pixels transparent."""
    if image.values is None:
        counts = image.counts.astype(np.float64)
        filled = counts > 0
        top = np.log1p(counts.max()) if filled.any() else 1.0
        t = np.log1p(counts) / top
    else:
        values = image.values
        filled = ~np.isnan(values)
        lo, hi = (np.nanmin(values), np.nanmax(values)) if filled.any() else (0.0, 1.0)
        t = np.where(filled, (np.nan_to_num(values) - lo) / ((hi - lo) or 1.0), 0.0)
    position = np.clip(t, 0, 1) * (len(RAMP) - 1)
    low = np.minimum(position.astype(np.int64), len(RAMP) - 2)
    frac = (position - low)[..., None]
    rgb = RAMP[low] * (1 - frac) + RAMP[low + 1] * frac
    alpha = np.where(filled, 110 + 145 * np.clip(t, 0, 1), 0)
    return np.dstack([rgb, alpha]).round().astype(np.uint8)


def png(image) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(shade(image), "RGBA").save(out, format="PNG", compress_level=1)
    return out.getvalue()
