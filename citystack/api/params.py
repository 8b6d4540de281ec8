"""Request parsing: a query string into a store View and checked values.

The value checks themselves live in :mod:`citystack.checks` (shared with the
CLI and the analysis registry); this module knows the query string: which
parameters a route takes, and that the others must be field filters.
"""

from __future__ import annotations

from .. import checks
from ..checks import BadParam
from ..stores.base import NUMERIC, Filter, LayerInfo, View

VIEW_PARAMS = {"bbox", "days", "hours"}


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
    """The View a request asks for; other parameters must be field filters."""
    v = View(bbox=checks.bbox(get(args, "bbox")), days=checks.days(get(args, "days")),
             hours=checks.hours(get(args, "hours")))
    if (v.days is not None or v.hours is not None) and layer.clock_columns is None:
        raise BadParam("days" if v.days is not None else "hours",
                       f"layer {layer.name!r} has no time field; day and hour filters need one")
    names = set(layer.field_names)
    for key in args:
        if key in reserved or key in VIEW_PARAMS:
            continue
        field, op = key, "in"
        for suffix in ("_min", "_max"):
            if key.endswith(suffix) and key[: -len(suffix)] in names:
                field, op = key[: -len(suffix)], suffix[1:]
        if field not in names:
            raise BadParam(key, f"unknown parameter or field {key!r} for layer {layer.name!r} "
                                f"(fields: {', '.join(sorted(names))})")
        info = layer.field(field)
        if op == "in":  # FIELD=a&FIELD=b: either (F12's stopgap until H2's params land)
            raws = [r for r in args.getlist(key) if r != ""] or [""]
            parse = checks.number if info.type == NUMERIC else checks.text
            v.filters.append(Filter(field, op, tuple(parse(r, key) for r in raws)))
            continue
        raw = checks.single(args, key)
        if info.type != NUMERIC:
            raise BadParam(key, f"field {field!r} is text; {op} filters need a numeric field")
        v.filters.append(Filter(field, op, checks.number(raw, key)))
    return v
