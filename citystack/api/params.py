"""Request parsing: query strings into checked values and a store View.

Every function raises an ApiError naming the parameter at fault.
"""

from __future__ import annotations

import math

from ..stores.base import DAYS, NUMERIC, Filter, LayerInfo, View
from .errors import bad_param

VIEW_PARAMS = {"bbox", "days", "hours"}


def number(args, name: str, default=None, lo=None, hi=None, kind=float):
    raw = args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise bad_param(name, "required")
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise bad_param(name, f"expected {'an integer' if kind is int else 'a number'}, got {raw!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise bad_param(name, f"expected a finite number, got {raw!r}")
    if lo is not None and value < lo:
        raise bad_param(name, f"must be at least {lo}, got {raw}")
    if hi is not None and value > hi:
        raise bad_param(name, f"must be at most {hi}, got {raw}")
    return value


def bbox(raw: str | None, name: str = "bbox"):
    """``minlon,minlat,maxlon,maxlat`` in degrees, or None when absent."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise bad_param(name, f"expected minlon,minlat,maxlon,maxlat, got {raw!r}")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise bad_param(name, f"expected four numbers, got {raw!r}") from None
    if not all(map(math.isfinite, (minx, miny, maxx, maxy))):
        raise bad_param(name, "coordinates must be finite numbers")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise bad_param(name, "longitudes must lie in -180..180 and latitudes in -90..90")
    if minx > maxx or miny > maxy:
        raise bad_param(name, "min must not exceed max (minlon,minlat,maxlon,maxlat)")
    return (minx, miny, maxx, maxy)


def days(raw: str | None):
    if not raw:
        return None
    out = []
    for token in raw.split(","):
        token = token.strip()
        if token.isdigit() and 0 <= int(token) <= 6:
            out.append(int(token))
            continue
        match = [i for i, d in enumerate(DAYS) if token and d.lower().startswith(token.lower()[:3])]
        if len(token) < 3 or not match:
            raise bad_param("days", f"expected day names (Mon..Sun) or numbers 0 (Monday)..6, got {token!r}")
        out.append(match[0])
    return sorted(set(out))


def hours(raw: str | None):
    """``START-END`` in whole hours, inclusive; START > END wraps past midnight."""
    if not raw:
        return None
    try:
        start, end = (int(p) for p in raw.split("-"))
    except ValueError:
        raise bad_param("hours", f"expected START-END in hours, e.g. 8-17, got {raw!r}") from None
    if not (0 <= start <= 23 and 0 <= end <= 23):
        raise bad_param("hours", "hours run from 0 to 23")
    return (start, end)


def view(args, layer: LayerInfo, reserved: set[str]) -> View:
    """The View a request asks for; other parameters must be field filters."""
    v = View(bbox=bbox(args.get("bbox")), days=days(args.get("days")), hours=hours(args.get("hours")))
    if (v.days is not None or v.hours is not None) and layer.kind != "checkins":
        raise bad_param("days" if v.days is not None else "hours",
                        f"layer {layer.name!r} has no times; day and hour filters apply to check-in layers")
    names = set(layer.field_names)
    for key, raw in args.items(multi=True):
        if key in reserved or key in VIEW_PARAMS:
            continue
        field, op = key, "eq"
        for suffix in ("_min", "_max"):
            if key.endswith(suffix) and key[: -len(suffix)] in names:
                field, op = key[: -len(suffix)], suffix[1:]
        if field not in names:
            raise bad_param(key, f"unknown parameter or field {key!r} for layer {layer.name!r} "
                                 f"(fields: {', '.join(sorted(names))})")
        info = layer.field(field)
        value = raw
        if op != "eq" or info.type == NUMERIC:
            if info.type != NUMERIC:
                raise bad_param(key, f"field {field!r} is text; {op} filters need a numeric field")
            value = number(args, key)
        v.filters.append(Filter(field, op, value))
    return v
