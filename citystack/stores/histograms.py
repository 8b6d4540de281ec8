"""Linked-chart distributions: what a field's chart shows, and the SQL that counts it.

A chart of a field shows the points that pass every *other* filter of the view
(crossfilter): its own filter is what the user is brushing, so it must not
narrow its own chart. :func:`without` takes that filter out; :func:`plan`
turns a request into one aggregate query per chart, run by the store (no row
leaves the database, only the counts).

Charts (``Chart.part``):

- ``bins``: a number in ``bins`` equal-width bins over the field's [min, max]
  from the layer's description. Bin k holds ``edges[k] <= v < edges[k+1]``, the
  last one also ``v == max`` (numpy.histogram's rule); the edges are
  ``min + k * step`` with the last one ``max``, computed the same way in SQL
  and in Python, so the answer's edges are the ones the counts used.
- ``values``: text and bool fields: counts per value, the ``top`` most common
  (ties by value), then ``other`` (the rest) and ``missing`` (no value).
- ``hours`` / ``days`` / ``dates``: a time field's hour of day (24), day of
  week (7, Monday first) and date buckets (a day or a month each, as the
  layer's time summary has them; a date field: its own dates). The hour chart
  leaves out the ``hours`` filter, the day chart ``days``, the date chart
  ``from``/``to`` and the field's own min/max.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

import numpy as np

from .base import BOOL, DATE, NUMERIC, TIME, BadParam, FieldInfo, LayerInfo, View, quote

PARTS = ("bins", "values", "hours", "days", "dates")
TIME_PARTS = ("hours", "days", "dates")
DEFAULT_BINS = 40
DEFAULT_TOP = 50


@dataclass(frozen=True)
class Chart:
    """One chart asked for: a field (public name) and what to count of it."""

    field: str
    part: str  # one of PARTS
    bins: int = DEFAULT_BINS
    top: int = DEFAULT_TOP


def charts_for(info: LayerInfo, name: str, bins: int = DEFAULT_BINS, top: int = DEFAULT_TOP) -> list[Chart]:
    """The charts of a field: a time field has three (hours, days, dates), a date field
    its dates, a number its bins, text and bool their values. ``name:part`` asks for one
    part (``started_at:hours``); a field whose own name has a colon wins."""
    part = None
    if name not in info.field_names and ":" in name:
        name, part = name.rsplit(":", 1)
    f = info.field(name)
    own = own_parts(info, f)
    if part is None:
        return [Chart(f.name, p, bins, top) for p in own]
    if part not in own:
        raise BadParam("fields", f"field {f.name!r} ({f.type}) has no {part!r} chart (charts: {', '.join(own)})")
    return [Chart(f.name, part, bins, top)]


def own_parts(info: LayerInfo, f: FieldInfo) -> tuple[str, ...]:
    if f.type == TIME:
        clock = info.time_field is not None and info.time_field.name == f.name
        return TIME_PARTS if clock else ("dates",)
    if f.type == DATE:
        return ("dates",)
    if f.type == NUMERIC:
        return ("bins",)
    return ("values",)


def without(info: LayerInfo, view: View, chart: Chart) -> View:
    """The view less the filters of the chart's own field (or part)."""
    if chart.part == "hours":
        return dataclasses.replace(view, hours=None)
    if chart.part == "days":
        return dataclasses.replace(view, days=None)
    filters = [f for f in view.filters if f.field != chart.field]
    out = dataclasses.replace(view, filters=filters)
    if chart.part == "dates" and info.time_field is not None and info.time_field.name == chart.field:
        out = dataclasses.replace(out, start=None, end=None)
    clock = info.clock_columns
    if clock is not None and info.kind == "checkins":  # a check-in layer's own day / hour fields
        column = info.field(chart.field).column
        if column == clock[0]:
            out = dataclasses.replace(out, days=None)
        elif column == clock[1]:
            out = dataclasses.replace(out, hours=None)
    return out


def edges(f: FieldInfo, bins: int) -> tuple[float, float, int, list[float]]:
    """(min, step, bins, edges) of a number field's bins; one bin when min == max."""
    lo, hi = f.min, f.max
    if lo is None or hi is None:
        return 0.0, 0.0, 0, []
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        return lo, 0.0, 1, [lo, hi]
    step = (hi - lo) / bins
    out = (lo + np.arange(bins + 1, dtype=np.float64) * step).tolist()
    out[-1] = hi
    return lo, step, bins, out


@dataclass
class Query:
    """One chart's SQL (the view's condition already in it) and how to read its answer."""

    chart: Chart
    sql: str
    values: list
    read: object  # (numpy columns) -> dict, the chart's JSON


def plan(info: LayerInfo, chart: Chart, table: str, where: str, values: list, mark: str) -> Query:
    """The aggregate query of one chart, over rows already narrowed by `where`."""
    f = info.field(chart.field)
    col = quote(f.column)
    base = {"name": f.name, "type": f.type}
    if chart.part == "bins":
        lo, step, n, bounds = edges(f, chart.bins)
        if n == 0:  # no values at all
            return Query(chart, f"SELECT NULL AS k, count(*) AS n FROM {table} WHERE {where}", values,
                         lambda out: {**base, "bins": [], "counts": [], **_totals(out)})
        # floor((v - lo) / step), then put right the values that rounding moved across an edge
        # (least and greatest skip NULLs: a row without a value is kept out by the CASE)
        k0 = (f"CASE WHEN {col} IS NULL THEN NULL ELSE "
              + (f"least(greatest(CAST(floor(({col} - {mark}) / {mark}) AS INTEGER), 0), {mark})" if step else "0")
              + " END")
        k0_values = [lo, step, n - 1] if step else []
        inner = (f"SELECT {k0} AS k0, {col} AS v FROM {table} WHERE {where}")
        if step:
            k = (f"k0 - CASE WHEN v < {mark} + k0 * {mark} THEN 1 ELSE 0 END "
                 f"+ CASE WHEN k0 < {mark} AND v >= {mark} + (k0 + 1) * {mark} THEN 1 ELSE 0 END")
            k_values = [lo, step, n - 1, lo, step]
        else:
            k, k_values = "k0", []
        sql = (f"SELECT k, count(*) AS n FROM (SELECT {k} AS k FROM ({inner}) AS a) AS b GROUP BY k")
        return Query(chart, sql, k_values + k0_values + values,
                     lambda out: {**base, "bins": bounds, "counts": _dense(out, n), **_totals(out)})
    if chart.part == "values":
        top = max(1, int(chart.top))
        sql = (f"SELECT v, n, total, missing FROM (SELECT v, n, sum(n) OVER () AS total, "
               f"sum(CASE WHEN v IS NULL THEN n ELSE 0 END) OVER () AS missing FROM "
               f"(SELECT {col} AS v, count(*) AS n FROM {table} WHERE {where} GROUP BY {col}) AS g) AS h "
               f"ORDER BY CASE WHEN v IS NULL THEN 0 ELSE 1 END, n DESC, v LIMIT {mark}")
        return Query(chart, sql, values + [top + 1], lambda out: _values(base, out, top))
    clock = info.clock_columns
    if chart.part in ("hours", "days"):
        column, size = (clock[1], 24) if chart.part == "hours" else (clock[0], 7)
        sql = (f"SELECT CAST({quote(column)} AS INTEGER) AS k, count(*) AS n FROM {table} "
               f"WHERE {where} GROUP BY 1")
        key = chart.part
        return Query(chart, sql, values, lambda out: {**base, "part": key, key: list(range(size)),
                                                      "counts": _dense(out, size), **_totals(out)})
    # dates
    bucket = date_bucket(info, f)
    sql = (f"SELECT CAST(date_trunc('{bucket}', {col}) AS DATE) AS k, count(*) AS n FROM {table} "
           f"WHERE {where} GROUP BY 1")
    return Query(chart, sql, values, lambda out: {**base, "part": "dates", "bucket": bucket,
                                                  **_dates(f, bucket, out), **_totals(out)})


def date_bucket(info: LayerInfo, f: FieldInfo) -> str:
    """A day per bucket, or a month when that gives more than 400 buckets; a time field
    keeps its time summary's bucket."""
    if info.time is not None and info.time.field == f.name and info.time.bucket in ("day", "month"):
        return info.time.bucket
    lo, hi = _day(f.min), _day(f.max)
    if lo is None or hi is None:
        return "day"
    return "day" if (hi - lo).days < 400 else "month"


def _day(iso) -> datetime.date | None:
    if iso is None:
        return None
    if isinstance(iso, datetime.datetime):
        return iso.date()
    if isinstance(iso, datetime.date):
        return iso
    return datetime.date.fromisoformat(str(iso)[:10])


def _dates(f: FieldInfo, bucket: str, out: dict) -> dict:
    """Every bucket from the field's min to its max (zeros included), and counts."""
    got = {}
    for k, n, known in zip(out["k"].tolist(), out["n"].tolist(), _known(out).tolist()):
        if known:
            got[_day(k if isinstance(k, datetime.date) else np.datetime64(k, "D").item())] = int(n)
    lo, hi = _day(f.min), _day(f.max)
    if got:
        lo = min([lo] + list(got)) if lo else min(got)
        hi = max([hi] + list(got)) if hi else max(got)
    keys: list[datetime.date] = []
    if lo is not None and hi is not None:
        d = lo.replace(day=1) if bucket == "month" else lo
        while d <= hi and len(keys) < 100_000:
            keys.append(d)
            d = (d.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) if bucket == "month" \
                else d + datetime.timedelta(days=1)
    counts = [got.get(d, 0) for d in keys]
    return {"dates": [d.isoformat() for d in keys], "counts": counts}


def _known(out: dict) -> np.ndarray:
    """Which groups have a key (NULL keys: the rows without a value)."""
    return np.array([k is not None and k == k for k in out["k"].tolist()], dtype=bool)


def _totals(out: dict) -> dict:
    """``total`` (every row that passed the other filters) and ``missing`` (no value)."""
    n = np.asarray(out["n"], dtype=np.int64)
    return {"total": int(n.sum()), "missing": int(n[~_known(out)].sum()) if len(n) else 0}


def _dense(out: dict, size: int) -> list[int]:
    counts = np.zeros(size, dtype=np.int64)
    known = _known(out)
    if known.any():
        k = np.asarray(out["k"])[known].astype(np.int64)
        n = np.asarray(out["n"])[known].astype(np.int64)
        keep = (k >= 0) & (k < size)
        np.add.at(counts, k[keep], n[keep])
    return counts.tolist()


def _values(base: dict, out: dict, top: int) -> dict:
    vs, ns = out["v"].tolist(), [int(n) for n in out["n"].tolist()]
    total = int(out["total"][0]) if len(ns) else 0
    missing = int(out["missing"][0]) if len(ns) else 0
    pairs = [(v, n) for v, n in zip(vs, ns) if v is not None][:top]
    shown = sum(n for _, n in pairs)
    if base["type"] == BOOL:
        pairs = [(bool(v), n) for v, n in pairs]
    return {**base, "values": [v for v, _ in pairs], "counts": [n for _, n in pairs],
            "other": total - missing - shown, "total": total, "missing": missing}


