"""Request parsing: a query string into a store View and checked values.

The value checks themselves live in :mod:`citystack.checks` (shared with the
CLI and the analysis registry); this module knows the query string: which
parameters a route takes, and that the others must be field filters.
"""

from __future__ import annotations

from .. import checks
from ..checks import BadParam
from ..stores.base import BOOL, DATE, NUMERIC, TEXT, TIME, FieldInfo, Filter, LayerInfo, View

VIEW_PARAMS = {"bbox", "days", "hours", "from", "to"}


def get(args, name: str) -> str | None:
    """A parameter given at most once (None when absent or empty)."""
    value = checks.single(args, name)
    return None if value == "" else value


def integer(args, name: str, default: int | None = None, lo: int | None = None,
            hi: int | None = checks.BIGINT) -> int:
    raw = _given(args, name, default)
    return default if raw is None else checks.integer(raw, name, lo, hi)


def number(args, name: str, default: float | None = None, lo: float | None = None,
           hi: float | None = None) -> float:
    raw = _given(args, name, default)
    return default if raw is None else checks.number(raw, name, lo, hi)


def _given(args, name: str, default) -> str | None:
    """The raw value; None when absent and a default stands in; BadParam when it is required."""
    raw = get(args, name)
    if raw is None and default is None:
        raise BadParam(name, "required")
    return raw


def view(args, layer: LayerInfo, reserved: set[str]) -> View:
    """The View a request asks for. `reserved`: the route's own parameters (given once
    each); the view's (bbox, days, hours, from, to) likewise; every other name must be a
    field filter: ``FIELD=v`` (repeat for several values, any of them), ``FIELD_not=v``
    (repeatable: none of them; rows without a value are kept), ``FIELD_min=`` /
    ``FIELD_max=`` (numbers, dates, times; inclusive). A field's exact name wins over
    reading a suffix. Values are parsed to the field's type."""
    v = View(bbox=checks.bbox(get(args, "bbox")), days=checks.days(get(args, "days")),
             hours=checks.hours(get(args, "hours")))
    for name in ("days", "hours"):
        if getattr(v, name) is not None and layer.clock_columns is None:
            raise BadParam(name, f"layer {layer.name!r} has no time field; day and hour filters need one")
    start, end = get(args, "from"), get(args, "to")
    if (start is not None or end is not None) and layer.time_field is None:
        raise BadParam("from" if start is not None else "to",
                       f"layer {layer.name!r} has no time field; from and to need one")
    v.start = None if start is None else checks.instant(start, "from")
    v.end = None if end is None else checks.instant(end, "to")
    if v.start is not None and v.end is not None and v.end <= v.start:
        raise BadParam("to", f"must be after from ({v.start.isoformat()}); the range is from <= t < to")
    for key in args:
        if key in reserved or key in VIEW_PARAMS:
            continue
        field, op = field_filter(layer, key, reserved | VIEW_PARAMS)
        info = layer.field(field)
        if op in ("min", "max"):
            if info.type not in RANGED:
                raise BadParam(key, f"field {field!r} is {info.type}; {key[len(field):]} filters need a "
                                    "number, a date or a time")
            value = parse_value(info, checks.single(args, key), key)
        else:
            value = tuple(parse_value(info, raw, key) for raw in checks.values(args, key))
        v.filters.append(Filter(field, op, value))
    return v


RANGED = (NUMERIC, TIME, DATE)
SUFFIXES = {"_not": "not_in", "_min": "min", "_max": "max"}


def field_filter(layer: LayerInfo, key: str, known: set[str] = frozenset()) -> tuple[str, str]:
    """(field, op) of a filter parameter: the field of that exact name, else a suffix read off."""
    names = set(layer.field_names)
    if key in names:
        return key, "in"
    for suffix, op in SUFFIXES.items():
        if key.endswith(suffix) and key[: -len(suffix)] in names:
            return key[: -len(suffix)], op
    raise BadParam(key, f"unknown parameter or field {key!r} for layer {layer.name!r} (parameters: "
                        f"{', '.join(sorted(known)) or 'none'}; fields: {', '.join(sorted(names)) or 'none'})")


def parse_value(info: FieldInfo, raw, name: str):
    """A filter value as the field's type: int or float, str, bool, date, naive UTC datetime."""
    try:
        if info.type == NUMERIC:
            text = str(raw).strip()
            if info.integer and checks.INTEGER.fullmatch(text):  # exact, also beyond 2^53
                return checks.integer(text, name, -checks.BIGINT - 1)
            return checks.number(raw, name)
        if info.type == BOOL:
            return checks.boolean(raw, name)
        if info.type == DATE:
            return checks.date(raw, name)
        if info.type == TIME:
            return checks.instant(raw, name)
        return checks.text(raw, name)
    except BadParam as exc:
        raise BadParam(name, f"field {info.name!r} is {info.type}; {exc.detail}") from None


def properties(args, layer: LayerInfo) -> list[str] | None:
    """The fields a request asks for (``properties=a,b``), checked; None: all of them."""
    if not get(args, "properties"):
        return None
    names = [p.strip() for p in args["properties"].split(",") if p.strip()]
    for p in names:
        if p not in layer.field_names:
            raise BadParam("properties", f"layer {layer.name!r} has no field {p!r} "
                                         f"(fields: {', '.join(layer.field_names)})")
    return names


def numeric_field(args, layer: LayerInfo, name: str = "field") -> str | None:
    """A numeric field the request names (``field=``), checked; None when not given."""
    field = get(args, name)
    if field is not None:
        numeric = [f.name for f in layer.fields if f.type == NUMERIC]
        if field not in numeric:
            raise BadParam(name, f"layer {layer.name!r} has no numeric field {field!r} "
                                 f"(numeric fields: {', '.join(numeric) or 'none'})")
    return field
