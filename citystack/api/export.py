"""Export: the points of a view (bbox and every filter) as a CSV or GeoJSON file,
streamed page by page in ``_ord`` order, up to a stated number of rows.

A view holding more than ``export_max_rows`` points (CITYSTACK_EXPORT_MAX_ROWS,
1,000,000 by default) is refused with a 400 naming the limit before anything is
sent, rather than cut: a file is either the whole view or nothing. The count
is taken when the request comes; rows are then read a page at a time
(``export_page_rows``), so memory stays that of one page however big the file.
"""

from __future__ import annotations

import logging

import numpy as np
import orjson
from flask import Blueprint, Response, request

from .. import checks
from ..checks import BadParam
from ..state import state
from . import params
from .geojson import feature_collection, to_csv

bp = Blueprint("export", __name__)
EXPORT_PARAMS = {"format", "properties"}
FORMATS = {"csv": ("text/csv", "csv"), "geojson": ("application/geo+json", "geojson")}
log = logging.getLogger("citystack.export")


@bp.get("/api/layers/<name>/export")
def export(name):
    shared, args = state(), request.args
    db, limit = shared.store, shared.settings.export_max_rows
    info = db.layer(name)
    view = params.view(args, info, EXPORT_PARAMS)
    fmt = checks.choice(params.get(args, "format") or "csv", "format", tuple(FORMATS))
    props = params.properties(args, info)
    rows = db.count(name, view)
    if rows > limit:
        raise BadParam("export_max_rows", f"the view holds {rows:,} points, more than an export may hold "
                                          f"({limit:,} rows, CITYSTACK_EXPORT_MAX_ROWS): narrow the view "
                                          "or its filters")
    names = props if props is not None else info.field_names
    pages = db.pages(name, view, props, shared.settings.export_page_rows)
    body = _csv(pages, names) if fmt == "csv" else _geojson(pages, name)
    mimetype, ext = FORMATS[fmt]
    return Response(_closing(body, pages), mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}.{ext}"',
                             "X-Export-Rows": str(rows), "Cache-Control": "no-store"})


def _csv(pages, names):
    empty = np.empty(0)
    header = to_csv({"id": empty, "lon": empty, "lat": empty, "properties": {n: empty for n in names}})
    yield header.encode()
    for cols in pages:
        yield to_csv(cols)[len(header):].encode()


def _geojson(pages, name):
    yield b'{"type":"FeatureCollection","name":' + orjson.dumps(name) + b',"features":['
    first = True
    for cols in pages:
        features = orjson.dumps(feature_collection(cols)["features"])[1:-1]
        if features:
            yield features if first else b"," + features
            first = False
    yield b"]}"


def _closing(body, pages):
    """The body, closing the store's page reader however the response ends (a client
    gone halfway included)."""
    try:
        yield from body
    except Exception:
        # The status is sent already: the server drops the connection, so the client sees
        # an unfinished transfer rather than a file that looks whole.
        log.exception("an export failed halfway; the connection is dropped")
        raise
    finally:
        pages.close()
