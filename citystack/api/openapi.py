"""The OpenAPI 3 document, built from the routes' parameters and the
analysis registry, so it cannot drift from what the server accepts."""

from __future__ import annotations

from flask import Blueprint, request

from .. import __version__
from ..analyses.registry import REGISTRY
from .respond import json_response

bp = Blueprint("openapi", __name__)

ERROR = {"description": "Bad request: the error names the parameter",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
NOT_FOUND = {"description": "Unknown layer or analysis",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _param(name, schema, description, required=False, where="query"):
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


LAYER = _param("layer", {"type": "string"}, "Layer name", True, "path")
BBOX = _param("bbox", {"type": "string", "example": "-74.0,40.7,-73.9,40.8"},
              "View as minlon,minlat,maxlon,maxlat (WGS 84 degrees)")
DAYS = _param("days", {"type": "string", "example": "Mon,Tue"}, "Check-in layers: days of week (names or 0=Monday..6)")
HOURS = _param("hours", {"type": "string", "example": "8-17"}, "Check-in layers: hour range, inclusive; 22-4 wraps")
STREAM = ("Send `Accept: text/event-stream` to receive `progress` events ({message, fraction}) "
          "and one final `result` or `error` event instead of JSON.")


def _ok(description, media="application/json", schema=None):
    return {"description": description, "content": {media: {"schema": schema or {"type": "object"}}}}


def document(base: str) -> dict:
    paths = {
        "/api/layers": {"get": {"summary": "List layers", "responses": {"200": _ok("Layers")}}},
        "/api/layers/{layer}": {"get": {"summary": "Describe a layer: kind, count, extent, fields",
                                        "parameters": [LAYER],
                                        "responses": {"200": _ok("Layer"), "404": NOT_FOUND}}},
        "/api/layers/{layer}/features": {"get": {
            "summary": "Features of a view as GeoJSON (RFC 7946) or CSV",
            "description": "Other query parameters filter by field: FIELD=value, FIELD_min=, FIELD_max=. " + STREAM,
            "parameters": [LAYER, BBOX, DAYS, HOURS,
                           _param("limit", {"type": "integer", "minimum": 1, "default": 10000}, "Most features to return"),
                           _param("offset", {"type": "integer", "minimum": 0, "default": 0}, "Features to skip"),
                           _param("properties", {"type": "string"}, "Comma-separated fields to include"),
                           _param("format", {"type": "string", "enum": ["geojson", "csv"]}, "Response format")],
            "responses": {"200": _ok("FeatureCollection", "application/geo+json"), "400": ERROR, "404": NOT_FOUND}}},
        "/api/layers/{layer}/bins": {"get": {
            "summary": "The view aggregated on a grid: count and mean/min/max of a field per cell",
            "description": STREAM,
            "parameters": [LAYER, BBOX, DAYS, HOURS,
                           _param("cells", {"type": "integer", "minimum": 1, "maximum": 512, "default": 64},
                                  "Cells along the longer side"),
                           _param("field", {"type": "string"}, "Numeric field to summarise")],
            "responses": {"200": _ok("FeatureCollection of cells", "application/geo+json"),
                          "400": ERROR, "404": NOT_FOUND}}},
        "/api/analyses": {"get": {"summary": "List analyses and their parameters",
                                  "responses": {"200": _ok("Analyses")}}},
        "/getData/": {"get": {
            "summary": "2015 route: listings of a view, coordinates in [lat, lng] order",
            "parameters": [_param(k, {"type": "number"}, d, True) for k, d in
                           (("lat1", "south"), ("lat2", "north"), ("lng1", "west"), ("lng2", "east"))],
            "responses": {"200": _ok("FeatureCollection ([lat, lng])"), "400": ERROR}}},
        "/eventSource/": {"get": {"summary": "2015 route: status lines as Server-Sent Events",
                                  "responses": {"200": _ok("Event stream", "text/event-stream", {"type": "string"})}}},
    }
    for analysis in REGISTRY.values():
        paths[f"/api/analyses/{analysis.name}"] = {"get": {
            "summary": analysis.title,
            "description": f"{analysis.description} Layer kinds: {', '.join(analysis.kinds)}. {STREAM}",
            "parameters": [_param("layer", {"type": "string"}, "Layer to analyse", True), BBOX, DAYS, HOURS]
                          + [_param(p.name, p.schema(), p.help) for p in analysis.params],
            "responses": {"200": _ok("Result"), "400": ERROR, "404": NOT_FOUND}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "citystack", "version": __version__,
                 "description": "Geolocated city data, a features API and server-side analyses."},
        "servers": [{"url": base}],
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error", "detail"],
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"},
                           "parameter": {"type": "string"}}}}},
    }


@bp.get("/api/openapi.json")
def openapi():
    return json_response(document(request.url_root.rstrip("/")))
