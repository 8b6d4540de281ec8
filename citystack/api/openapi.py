"""The OpenAPI 3 document, built from the routes' parameters, the settings
and the analysis registry, so it cannot drift from what the server accepts.

It is as strict as the server where a schema can say it: integers are
integers with their bounds, numbers have their ranges, choices are enums,
every answer has a schema (errors included). What a schema cannot say
(a bbox's min below its max, field names that depend on the layer, a cell
that must fit its window) is said in the descriptions, and the server
answers it with a 400 naming the parameter. tests/test_schemathesis.py
checks the server against this document.
"""

from __future__ import annotations

from flask import Blueprint

from .. import __version__
from ..analyses.registry import REGISTRY
from ..checks import BIGINT
from ..settings import Settings
from ..state import state
from ..stores.base import KINDS
from ..stores.histograms import DEFAULT_BINS, DEFAULT_TOP
from .classic import MAX_CELLS
from .histograms import MAX_BINS, MAX_CHARTS, MAX_TOP
from .density import MAX_SIDE as DENSITY_SIDE
from .density import STATS as DENSITY_STATS
from .links import root
from .respond import json_response

bp = Blueprint("openapi", __name__)

JSON, GEOJSON, CSV, SSE, HTML = "application/json", "application/geo+json", "text/csv", "text/event-stream", "text/html"
ARROW, PNG, BINARY = "application/vnd.apache.arrow.stream", "image/png", "application/octet-stream"
ONCE = ("Every parameter may be given once (a repeated one is refused with a 400), but the values of a "
        "field filter `FIELD=` or `FIELD_not=`.")
STREAM = ("Send `Accept: text/event-stream` to receive `progress` events ({message, fraction}) "
          "and one final `result` (the JSON answer) or `error` ({error, detail, status}) event instead.")
FILTERS = ("Field filters, by the layer's fields (`GET /api/layers/{layer}` lists them, with their types): "
           "`FIELD=value` keeps rows whose field equals the value; repeat it for several values "
           "(`room_type=Private room&room_type=Shared room`: either). `FIELD_not=value` (repeatable) drops "
           "rows with that value (rows without a value are kept). `FIELD_min=` and `FIELD_max=` (numbers, "
           "dates and times; once each) bound it, inclusive. Values are read as the field's type: numbers, "
           "text, booleans (true/false, t/f, yes/no, 1/0, any case), dates (YYYY-MM-DD), times (ISO 8601 "
           "date or date-time, optional fraction and offset: converted to UTC); a value that is not of the "
           "type is a 400 naming the parameter. A field's exact name wins over reading a suffix "
           "(a field `size_min` is filtered by `size_min=`); the route's own parameters win over fields. "
           "A name that is neither a parameter here nor a field filter of the layer is a 400.")


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name, schema, description, required=False, where="query", **extra):
    out = {"name": name, "in": where, "required": required, "schema": schema, "description": description, **extra}
    if where == "query" and not required:
        out["allowEmptyValue"] = True  # an empty value is the same as none (HTML forms send them)
    return out


def _csv(name, items, description, **extra):
    """A comma-separated list in one query parameter (form style, not exploded)."""
    return _param(name, {"type": "array", "items": items, **extra}, description, style="form", explode=False)


def _int(lo=None, hi=BIGINT, default=None) -> dict:
    out: dict = {"type": "integer"}
    if lo is not None:
        out["minimum"] = lo
    if hi is not None:
        out["maximum"] = hi
    if default is not None:
        out["default"] = default
    return out


LAYER = _param("layer", {"type": "string", "minLength": 1}, "Layer name (`GET /api/layers` lists them); unknown: 404", True, "path")
BBOX = _csv("bbox", {"type": "number", "minimum": -180, "maximum": 180},
            "View as minlon,minlat,maxlon,maxlat (WGS 84 degrees): longitudes in -180..180, latitudes in "
            "-90..90, min not above max (a zero-width or zero-height view is allowed). Default: the whole layer.",
            minItems=4, maxItems=4, example=[114.04, 22.53, 114.06, 22.55])
TIMED = "Layers with a time field (`time` in the layer's description) and check-in layers (others: 400)"
DAYS = _csv("days", {"type": "string", "enum": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                                                 "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                                 "Saturday", "Sunday", "0", "1", "2", "3", "4", "5", "6"]},
            TIMED + ": days of week, names (any case) or 0 = Monday .. 6 = Sunday",
            minItems=1, example=["Sat", "Sun"])
HOUR = "([01]?[0-9]|2[0-3])"
HOURS = _param("hours", {"type": "string", "pattern": f"^{HOUR}(-{HOUR})?$", "example": "8-17"},
               TIMED + ": an hour 0..23 (`8`: 8:00 to 8:59) or START-END, inclusive; START > END wraps past "
               "midnight (22-4)")
INSTANT = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?"
                                        r"([Zz]|[+ -][0-9]{2}(:?[0-9]{2})?)?)?$", "example": "2021-01-08T17:00:00"}
FROM = _param("from", INSTANT, "Layers with a time field (others: 400): rows at or after this instant, ISO 8601 "
                               "(a date is its midnight; an offset is converted to UTC, the layer's times are)")
TO = _param("to", INSTANT, "Layers with a time field (others: 400): rows before this instant (half-open: "
                           "`from` <= t < `to`); must be after `from`")
FILTER_PARAM = {"name": "filters", "in": "query", "required": False, "style": "form", "explode": True,
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}, "description": FILTERS}


def _content(schema, *media) -> dict:
    return {m: {"schema": schema} for m in media}


def _ok(description, schema, media=(JSON,), stream=False) -> dict:
    content = _content(schema, *media)
    if stream:
        content[SSE] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


ERRORS = {
    "400": "Bad request: `parameter` names what is wrong and `detail` how. " + ONCE,
    "404": "No such layer or analysis",
    "405": "Method not allowed (the `Allow` header lists those that are)",
    "414": "Request target (path and query string) too long",
    "431": "Request headers too large",
    "499": "The client went away before the answer (event streams)",
    "500": "Internal error: the body carries a `request_id`, the same as the server's log line",
    "503": "Busy (analysis slots, time limit) or database unavailable: try again after `Retry-After` seconds",
}


def _errors(*codes) -> dict:
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in codes}


COMMON = ("405", "414", "431", "500")
STORE = ("503",)  # any route that reads the database


def _operation(summary, responses, parameters=(), description="", codes=()) -> dict:
    out = {"summary": summary, "responses": {**responses, **_errors(*codes, *COMMON)}}
    if description:
        out["description"] = description
    if parameters:
        out["parameters"] = list(parameters)
    return out


def _analysis_param(p) -> dict:
    schema = p.schema()
    if schema["type"] == "integer" and "maximum" not in schema:
        schema["maximum"] = BIGINT
    help_ = p.help
    if p.type == "field":
        help_ += f" (a {'numeric ' if p.numeric else ''}field of the layer; others: 400)"
    return _param(p.name, schema, help_)


def paths(settings: Settings) -> dict:
    layer_ops = {
        "/": {"get": _operation("The map page", {"200": _ok("The page", {"type": "string"}, (HTML,))})},
        "/api/health": {"get": _operation(
            "Health, for load balancers: store, data version, open event streams, analysis counts",
            {"200": _ok("Healthy", ref("Health"))}, codes=STORE)},
        "/api/openapi.json": {"get": _operation("This document", {"200": _ok("OpenAPI 3 document",
                                                                            {"type": "object"})})},
        "/api/layers": {"get": _operation("List layers", {"200": _ok("Layers", ref("LayerList"))}, codes=STORE)},
        "/api/layers/{layer}": {"get": _operation(
            "Describe a layer: kind, count, extent, fields and links",
            {"200": _ok("Layer", ref("Layer"))}, [LAYER], codes=("404", *STORE))},
        "/api/layers/{layer}/features": {"get": _operation(
            "Features of a view as GeoJSON (RFC 7946), CSV or an Apache Arrow stream",
            {"200": {"description": "GeoJSON FeatureCollection ([lon, lat]), or CSV with `format=csv`, or "
                                    "with `format=arrow` an Arrow IPC stream: float64 `lon`, `lat`, `id` "
                                    "(int64, or text), then the properties typed (float64/int64, utf8 "
                                    "dictionary-encoded for categories, bool, timestamp[us], date32; NULL "
                                    "as null), in the GeoJSON's order; the next page in a `Link` header",
                     "headers": {"Link": {"schema": {"type": "string"},
                                          "description": "format=arrow: `<URL>; rel=\"next\"` when there are more"},
                                 "X-Number-Returned": {"schema": {"type": "integer", "minimum": 0},
                                                       "description": "format=arrow: rows in the stream"}},
                     "content": {GEOJSON: {"schema": ref("FeatureCollection")}, CSV: {"schema": {"type": "string"}},
                                 ARROW: {"schema": {"type": "string", "format": "binary"}},
                                 SSE: {"schema": {"type": "string"}}}}},
            [LAYER, BBOX, DAYS, HOURS, FROM, TO,
             _param("limit", _int(1, settings.max_limit, settings.default_limit),
                    f"Most features to return (`format=arrow`: up to {settings.arrow_max_limit:,})"),
             _param("offset", _int(0, BIGINT, 0), "Features to skip (a `next` link pages on)"),
             _csv("properties", {"type": "string"}, "Fields to include, comma-separated (others: 400); "
                                                   "default all", minItems=1),
             _param("format", {"type": "string", "enum": ["geojson", "json", "csv", "arrow"], "default": "geojson"},
                    "Response format: GeoJSON (`json` is the same), CSV (`text/csv`, no stream) or Arrow "
                    "(`application/vnd.apache.arrow.stream`, no stream)"),
             FILTER_PARAM],
            FILTERS + " " + STREAM, codes=("400", "404", "499", *STORE))},
        "/api/layers/{layer}/bins": {"get": _operation(
            "The view aggregated on a grid: count and mean/min/max of a field per cell",
            {"200": _ok("FeatureCollection of Polygon cells (non-empty ones)", ref("BinCollection"),
                        (GEOJSON,), stream=True)},
            [LAYER, BBOX, DAYS, HOURS, FROM, TO,
             _param("cells", _int(1, 512, 64), "Cells along the longer side of the view"),
             _param("field", {"type": "string"}, "Numeric field to summarise (others: 400)"),
             FILTER_PARAM],
            FILTERS + " " + STREAM, codes=("400", "404", "499", *STORE))},
        "/api/layers/{layer}/histograms": {"get": _operation(
            "Linked-chart histograms: the distributions of several fields in a view, each leaving out "
            "its own filter",
            {"200": _ok("One chart per field (three for the time field: hours, days, dates)",
                        ref("Histograms"), stream=True)},
            [LAYER, BBOX, DAYS, HOURS,
             _csv("fields", {"type": "string", "minLength": 1},
                  "Fields to chart, comma-separated (required; others: 400). A number gives `bins`, text "
                  "and bool `values`, the time field `hours`, `days` and `dates` (or one of them: "
                  "`FIELD:hours`), a date field `dates`", minItems=1, maxItems=MAX_CHARTS),
             _param("bins", _int(1, MAX_BINS, DEFAULT_BINS), "Equal-width bins of a number over the field's "
                                                             "[min, max] (the layer's description)"),
             _param("top", _int(1, MAX_TOP, DEFAULT_TOP), "Values of a text or bool field listed, most "
                                                          "common first; the rest are counted in `other`"),
             FILTER_PARAM],
            "Each chart counts the points of the view (bbox: the current view, none: the whole layer) that "
            "pass every filter but its own: a number's chart leaves out FIELD_min/FIELD_max, a category's "
            "FIELD=, the hour chart `hours`, the day chart `days`, the date chart from/to and the time "
            "field's min/max. Bin k of a number holds edges[k] <= v < edges[k+1], the last also v = max. "
            "Counted in the database (one aggregate query per chart). " + FILTERS + " " + STREAM,
            codes=("400", "404", "499", *STORE))},
        "/api/layers/{layer}/export": {"get": _operation(
            "Export the points of a view (bbox and every filter) as a CSV or GeoJSON file, streamed",
            {"200": {"description": "The file (Content-Disposition: attachment), rows in the layer's order; "
                                    "`X-Export-Rows` gives their number",
                     "headers": {"X-Export-Rows": {"schema": _int(0), "description": "rows in the file"},
                                 "Content-Disposition": {"schema": {"type": "string"},
                                                         "description": "attachment; filename=LAYER.csv"}},
                     "content": {CSV: {"schema": {"type": "string"}},
                                 GEOJSON: {"schema": {"type": "object"}}}}},
            [LAYER, BBOX, DAYS, HOURS,
             _param("format", {"type": "string", "enum": ["csv", "geojson"], "default": "csv"},
                    "File format: CSV (id, lon, lat, then the fields) or a GeoJSON FeatureCollection"),
             _csv("properties", {"type": "string"}, "Fields to include, comma-separated (others: 400); "
                                                   "default all", minItems=1),
             FILTER_PARAM],
            f"At most {settings.export_max_rows:,} rows (CITYSTACK_EXPORT_MAX_ROWS): a view holding more is a "
            "400 (`parameter`: export_max_rows) before anything is sent, never a file cut short. "
            + FILTERS, codes=("400", "404", *STORE))},
        "/api/layers/{layer}/density": {"get": _operation(
            "The view as a density image: points (or a statistic of a field) per pixel, computed in the store",
            {"200": {"description": "Pixels binned as numpy.histogram2d bins them (equal widths over the "
                                    "bbox; the last column and row hold their far edge too), row-major, "
                                    "north row first. `format=bin`: little-endian uint32 counts, or float32 "
                                    "values (NaN where empty) for a statistic; `json`: the same as JSON; "
                                    "`png`: shaded (log scale of counts; a statistic linear), empty pixels "
                                    "transparent",
                     "headers": {f"X-Density-{k}": {"schema": schema, "description": text} for k, schema, text in (
                         ("Width", {"type": "integer", "minimum": 1}, "pixels across"),
                         ("Height", {"type": "integer", "minimum": 1}, "pixels down"),
                         ("Bbox", {"type": "string"}, "minlon,minlat,maxlon,maxlat of the image"),
                         ("Stat", {"type": "string", "enum": list(DENSITY_STATS)}, "what a pixel holds"),
                         ("Dtype", {"type": "string", "enum": ["uint32", "float32"]}, "format=bin: the array's"),
                         ("Total", {"type": "integer", "minimum": 0}, "points counted"),
                         ("Max", {"type": "number"}, "the largest pixel"))},
                     "content": {BINARY: {"schema": {"type": "string", "format": "binary"}},
                                 JSON: {"schema": ref("Density")},
                                 PNG: {"schema": {"type": "string", "format": "binary"}}}}},
            [LAYER, BBOX, DAYS, HOURS,
             _param("width", _int(1, DENSITY_SIDE, 256),
                    f"Pixels across; width x height at most {settings.density_max_pixels:,} (more: 400)"),
             _param("height", _int(1, DENSITY_SIDE, 256), "Pixels down"),
             _param("field", {"type": "string"}, "Numeric field for a statistic (others: 400); with "
                                                 "`stat=count`, the points that have a value are counted"),
             _param("stat", {"type": "string", "enum": list(DENSITY_STATS), "default": "count"},
                    "What a pixel holds: the count, or mean/sum/min/max of `field` (needs one: 400)"),
             _param("format", {"type": "string", "enum": ["bin", "json", "png"], "default": "bin"},
                    "bin (`application/octet-stream`), json or png (`image/png`)"),
             FILTER_PARAM],
            FILTERS + " The bbox needs an area, and a pixel a side of 1e-10 degrees or more (400).",
            codes=("400", "404", *STORE))},
        "/api/analyses": {"get": _operation("List analyses and their parameters",
                                            {"200": _ok("Analyses", ref("AnalysisCatalogue"))})},
    }
    for analysis in REGISTRY.values():
        layer_ops[f"/api/analyses/{analysis.name}"] = {"get": _operation(
            analysis.title,
            {"200": _ok("The result, with its input, parameters and timing", ref("AnalysisResult"), stream=True)},
            [_param("layer", {"type": "string", "minLength": 1}, f"Layer to analyse: a {' or '.join(analysis.kinds)} layer "
                                                 "(unknown: 404, another kind: 400)", True), BBOX, DAYS, HOURS, FROM, TO]
            + [_analysis_param(p) for p in analysis.params] + [FILTER_PARAM],
            f"{analysis.description} Layer kinds: {', '.join(analysis.kinds)}. {FILTERS} The analysis's "
            f"own parameters win over fields of the same name. {STREAM}", codes=("400", "404", "499", *STORE))}
    layer_ops["/getData/"] = {"get": _operation(
        "2015 route: listings of a view, coordinates in [lat, lng] order, and an optional analysis",
        {"200": _ok("FeatureCollection as the 2015 server answered it", ref("ClassicCollection"))},
        [_param(k, {"type": "number", "minimum": -lim, "maximum": lim}, d, True) for k, d, lim in
         (("lat1", "one latitude of the view", 90), ("lat2", "the other latitude", 90),
          ("lng1", "one longitude of the view", 180), ("lng2", "the other longitude", 180))]
        + [_param("analysis", {"type": "boolean", "default": False},
                  "Also answer `analysis`, a list of grid cells (needs w, h and cell_size, and a view with "
                  "an area)"),
           _param("analysisType", {"type": "string", "enum": ["heatmap", "interp"], "default": "heatmap"},
                  "Heat map of the points, or an interpolated price surface"),
           _param("w", _int(1, 10_000), "Window width in pixels (with analysis)"),
           _param("h", _int(1, 10_000), "Window height in pixels (with analysis)"),
           _param("cell_size", _int(2, 2_000), "Cell side in pixels; must fit w and h, and the grid hold "
                                                f"at most {MAX_CELLS:,} cells (with analysis)")],
        "The 2015 client's route, on the classic layer (CITYSTACK_CLASSIC_LAYER). Status lines go to "
        "`/eventSource/`. Other parameters are ignored, as in 2015. " + ONCE,
        codes=("400", "404", *STORE))}
    layer_ops["/eventSource/"] = {"get": _operation(
        "2015 route: status lines of /getData/ requests as Server-Sent Events (never ends)",
        {"200": _ok("Event stream: `data:` lines of text", {"type": "string"}, (SSE,))})}
    return layer_ops


def _number(nullable=False) -> dict:
    return {"type": "number", "nullable": True} if nullable else {"type": "number"}


def _array(items, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


def _object(properties: dict, required=(), additional=True) -> dict:
    out: dict = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if additional is not True:
        out["additionalProperties"] = additional
    return out


COUNT = {"type": "integer", "minimum": 0}
PROPERTY_VALUE = {"nullable": True, "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
FEATURE_ID = {"anyOf": [{"type": "string"}, {"type": "number"}]}
FIELD_EXTRA = {
    "integer": {"type": "boolean", "description": "numbers: all values are integers"},
    "unit": {"type": "string", "enum": ["percent", "money"]},
    "id": {"type": "boolean", "description": "identifier-like: values are sent as strings (exact digits)"},
    "top": _array(_array(PROPERTY_VALUE, minItems=2, maxItems=2),
                  description="[value, count], most common first (a category: all its values, up to a limit)"),
    "category": {"type": "boolean", "description": "few distinct values: `top` lists them (and `others`)"},
    "distinct": COUNT, "others": {**COUNT, "description": "a category's values left out of `top`"},
}


def _chart(properties: dict, *required) -> dict:
    """One chart of the histograms answer: its own keys beside the shared ones."""
    shared = {"name": {"type": "string"}, "counts": _array(COUNT),
              "total": {**COUNT, "description": "points passing every other filter"},
              "missing": {**COUNT, "description": "of those, points without a value"}}
    return _object({**shared, **properties}, ("name", "type", "counts", "total", "missing", *required),
                   additional=False)


def schemas() -> dict:
    bbox = _array(_number(), minItems=4, maxItems=4, description="minlon, minlat, maxlon, maxlat")
    position = _array(_number(), minItems=2, maxItems=2)
    link = _object({"rel": {"type": "string"}, "href": {"type": "string"}, "type": {"type": "string"}},
                   ("rel", "href"))
    return {
        "Error": _object({"error": {"type": "string"}, "detail": {"type": "string"},
                          "parameter": {"type": "string", "description": "400: the parameter at fault"},
                          "request_id": {"type": "string", "description": "500: the log line's id"}},
                         ("error", "detail")),
        "Link": link,
        "Field": {"oneOf": [
            _object({"name": {"type": "string"}, "type": {"type": "string", "enum": ["number"]},
                     "min": _number(True), "max": _number(True), **FIELD_EXTRA},
                    ("name", "type", "min", "max")),
            _object({"name": {"type": "string"}, "type": {"type": "string", "enum": ["text", "bool"]},
                     **FIELD_EXTRA}, ("name", "type", "top")),
            _object({"name": {"type": "string"}, "type": {"type": "string", "enum": ["time", "date"]},
                     "min": {"type": "string", "nullable": True, "description": "ISO 8601"},
                     "max": {"type": "string", "nullable": True, "description": "ISO 8601"}, **FIELD_EXTRA},
                    ("name", "type", "min", "max"))]},
        "TimeSummary": _object({
            "field": {"type": "string", "nullable": True, "description": "the time field (null: a check-in "
                                                                          "layer's day and hour only)"},
            "min": {"type": "string", "nullable": True}, "max": {"type": "string", "nullable": True},
            "hours": _array(COUNT, description="rows by hour of day, 0..23 (24 counts)"),
            "days": _array(COUNT, description="rows by day of week, Monday first (7 counts)"),
            "bucket": {"type": "string", "nullable": True, "enum": ["day", "month", None]},
            "dates": _array(_array(PROPERTY_VALUE, minItems=2, maxItems=2),
                            description="[ISO date of the bucket's start, count]")},
            ("field", "min", "max", "hours", "days")),
        "Layer": _object({
            "name": {"type": "string"}, "kind": {"type": "string", "enum": list(KINDS)}, "count": COUNT,
            "extent": {**bbox, "nullable": True}, "fields": _array(ref("Field")),
            "version": {"type": "integer"}, "source": {"type": "string"},
            "places": {"type": "string", "description": "a check-in layer's places layer"},
            "time": {**ref("TimeSummary"), "nullable": True},
            "name_field": {"type": "string", "nullable": True, "description": "the field naming a feature"},
            "colour_field": {"type": "string", "nullable": True, "description": "the field to colour by at first"},
            "big_ids": {"type": "boolean", "description": "feature ids are sent as strings (beyond 2^53)"},
            "links": _array(ref("Link"), description="items (features) and bins of the layer")},
            ("name", "kind", "count", "extent", "fields", "version", "source", "time", "name_field",
             "colour_field", "big_ids")),
        "LayerList": _object({"layers": _array(ref("Layer"))}, ("layers",)),
        "Point": _object({"type": {"type": "string", "enum": ["Point"]}, "coordinates": position},
                         ("type", "coordinates")),
        "Feature": _object({"type": {"type": "string", "enum": ["Feature"]}, "id": FEATURE_ID,
                            "geometry": ref("Point"),
                            "properties": {"type": "object", "additionalProperties": PROPERTY_VALUE}},
                           ("type", "id", "geometry", "properties")),
        "FeatureCollection": _object({
            "type": {"type": "string", "enum": ["FeatureCollection"]}, "features": _array(ref("Feature")),
            "numberReturned": COUNT, "layer": {"type": "string"},
            "links": _array(ref("Link"), description="`next` when there are more features")},
            ("type", "features", "numberReturned", "layer", "links")),
        "BinCollection": _object({
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": _array(_object({
                "type": {"type": "string", "enum": ["Feature"]},
                "geometry": _object({"type": {"type": "string", "enum": ["Polygon"]},
                                     "coordinates": _array(_array(position, minItems=4), minItems=1)},
                                    ("type", "coordinates")),
                "properties": _object({"i": COUNT, "j": COUNT, "count": {"type": "integer", "minimum": 1},
                                       "mean": _number(True), "min": _number(True), "max": _number(True)},
                                      ("i", "j", "count"))}, ("type", "geometry", "properties"))),
            "numberReturned": COUNT,
            "grid": _object({"bbox": bbox, "nx": {"type": "integer", "minimum": 1},
                             "ny": {"type": "integer", "minimum": 1}, "dx": _number(), "dy": _number()},
                            ("bbox", "nx", "ny", "dx", "dy")),
            "total": COUNT, "layer": {"type": "string"}, "field": {"type": "string", "nullable": True}},
            ("type", "features", "numberReturned", "grid", "total", "layer", "field")),
        "Histograms": _object({
            "layer": {"type": "string"}, "fields": _array(ref("Chart")),
            "total": {**COUNT, "description": "points of the view passing every filter"}},
            ("layer", "fields", "total"), additional=False),
        "Chart": {"oneOf": [
            _chart({"type": {"type": "string", "enum": ["number"]},
                    "bins": _array(_number(), description="edges: one more than counts")}, "bins"),
            _chart({"type": {"type": "string", "enum": ["text", "bool"]},
                    "values": _array(PROPERTY_VALUE, description="most common first"),
                    "other": {**COUNT, "description": "points with a value not listed"}}, "values", "other"),
            _chart({"type": {"type": "string", "enum": ["time"]}, "part": {"type": "string", "enum": ["hours"]},
                    "hours": _array({"type": "integer", "minimum": 0, "maximum": 23}, minItems=24,
                                    maxItems=24)}, "part", "hours"),
            _chart({"type": {"type": "string", "enum": ["time"]}, "part": {"type": "string", "enum": ["days"]},
                    "days": _array({"type": "integer", "minimum": 0, "maximum": 6}, minItems=7, maxItems=7,
                                   description="0 = Monday")}, "part", "days"),
            _chart({"type": {"type": "string", "enum": ["time", "date"]},
                    "part": {"type": "string", "enum": ["dates"]},
                    "bucket": {"type": "string", "enum": ["day", "month"]},
                    "dates": _array({"type": "string", "format": "date"},
                                    description="first day of each bucket, from the field's min to its max")},
                   "part", "bucket", "dates")]},
        "Density": _object({
            "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1}, "bbox": bbox,
            "stat": {"type": "string", "enum": list(DENSITY_STATS)}, "field": {"type": "string", "nullable": True},
            "total": COUNT, "max": _number(),
            "counts": _array(COUNT, description="width x height counts, row-major, north row first"),
            "values": _array(_number(True), description="a statistic: width x height values, null where empty")},
            ("width", "height", "bbox", "stat", "field", "total", "max", "counts"), additional=False),
        "AnalysisCatalogue": _object({"analyses": _array(_object({
            "name": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "kinds": _array({"type": "string", "enum": list(KINDS)}),
            "params": _array(_object({
                "name": {"type": "string"},
                "type": {"type": "string", "enum": ["int", "float", "bool", "choice", "field", "str"]},
                "default": {"nullable": True}, "help": {"type": "string"},
                "min": _number(), "max": _number(), "choices": _array({"type": "string"}),
                "numeric": {"type": "boolean"}}, ("name", "type", "default", "help")))},
            ("name", "title", "description", "kinds", "params")))}, ("analyses",)),
        "AnalysisInput": _object({"layer": {"type": "string"}, "bbox": bbox, "count": COUNT, "used": COUNT,
                                  "sampled": {"type": "boolean"}}, ("layer", "bbox", "count", "used", "sampled")),
        "AnalysisResult": {"allOf": [
            _object({"analysis": {"type": "string"}, "kind": {"type": "string"},
                     "input": ref("AnalysisInput"), "params": {"type": "object"},
                     "seconds": {"type": "number", "minimum": 0}, "cached": {"type": "boolean"}},
                    ("analysis", "input", "params", "seconds", "cached")),
            {"anyOf": [ref("GridResult"), ref("ClustersResult"), ref("NetworkResult"),
                       _object({"kind": {"not": {"type": "string", "enum": ["grid", "clusters", "network"]}}})]}]},
        "GridResult": _object({
            "kind": {"type": "string", "enum": ["grid"]},
            "grid": _object({"bbox": bbox, "nx": {"type": "integer", "minimum": 1},
                             "ny": {"type": "integer", "minimum": 1},
                             "values": _array(_array(_number(True)),
                                              description="ny rows of nx values, 0..1, south row first")},
                            ("bbox", "nx", "ny", "values"))}, ("kind", "grid")),
        "ClustersResult": _object({
            "kind": {"type": "string", "enum": ["clusters"]},
            "points": _object({"lon": _array(_number()), "lat": _array(_number()),
                               "label": _array({"type": "integer", "minimum": -1})}, ("lon", "lat", "label")),
            "clusters": _array(_object({"label": COUNT, "size": COUNT, "hull": _array(position)},
                                       ("label", "size"))),
            "noise": COUNT}, ("kind", "points", "clusters", "noise")),
        "NetworkResult": _object({
            "kind": {"type": "string", "enum": ["network"]},
            "nodes": _array(_object({"id": FEATURE_ID, "lon": _number(), "lat": _number(), "links": COUNT,
                                     "weighted_degree": {"type": "number", "minimum": 0},
                                     "betweenness": {"type": "number", "minimum": 0}},
                                    ("id", "lon", "lat", "links"))),
            "edges": _array(_object({"source": FEATURE_ID, "target": FEATURE_ID, "weight": COUNT},
                                    ("source", "target", "weight")))}, ("kind", "nodes", "edges")),
        "Health": _object({"status": {"type": "string", "enum": ["ok"]}, "store": {"type": "string"},
                           "data_version": {"type": "string"}, "event_streams": COUNT,
                           # counts (running, completed, cached, ...) and the worker processes' ids
                           "analyses": _object({"workers": _array(COUNT)}, additional=COUNT)},
                          ("status", "store", "data_version", "event_streams", "analyses")),
        "ClassicCollection": _object({
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": _array(_object({
                "type": {"type": "string", "enum": ["Feature"]}, "id": FEATURE_ID,
                "properties": {"type": "object", "additionalProperties": PROPERTY_VALUE},
                "geometry": _object({"type": {"type": "string", "enum": ["Point"]},
                                     "coordinates": {**position, "description": "[lat, lng]"}},
                                    ("type", "coordinates"))}, ("type", "id", "properties", "geometry"))),
            "lines": _array(_object({"from": FEATURE_ID, "to": FEATURE_ID,
                                     "coordinates": _array(_number(), minItems=4, maxItems=4)},
                                    ("from", "to", "coordinates")),
                            description="check-in layers: links between places, [lat1, lng1, lat2, lng2]"),
            "analysis": _array(_object({"x": _number(), "y": _number(), "width": _number(), "height": _number(),
                                        "value": _number(True)}, ("x", "y", "width", "height", "value")),
                               description="with analysis=true: cells in pixels, values 0..1")},
            ("type", "features")),
    }


def responses() -> dict:
    out = {}
    for code, description in ERRORS.items():
        out[f"E{code}"] = {"description": description, "content": {JSON: {"schema": ref("Error")}}}
    out["E405"]["headers"] = {"Allow": {"schema": {"type": "string"}, "description": "the methods allowed"}}
    out["E503"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return out


def document(server: str, settings: Settings) -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "citystack", "version": __version__,
                 "description": "Geolocated city data, a features API and server-side analyses. "
                                "Every answer that is not a page or data is a JSON error "
                                "`{error, detail}`. " + ONCE},
        "servers": [{"url": server or "/"}],
        "paths": paths(settings),
        "components": {"schemas": schemas(), "responses": responses()},
    }


@bp.get("/api/openapi.json")
def openapi():
    return json_response(document(root(), state().settings))
