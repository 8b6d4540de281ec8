"""Linked-chart counts from columns held in memory: a brush drags at interactive speed.

A chart request on a whole layer scans every row once per chart (its own filter
left out each time): on 1,000,000 points DuckDB's single-threaded scans take a
few hundred milliseconds for three charts, too slow for a brush. The DuckDB store
therefore keeps, per layer of up to ``memory_index_rows`` points and per field
asked for, the column in memory as a compact code array (bin number, category
code, hour, day, date bucket; raw values for range filters), read once per
version of the file in ``_ord`` order (the same trade as stores/pointindex.py).
A request is then a few vector passes: one boolean mask per filter, and per chart
a ``bincount`` of its codes under the AND of the other masks.

The answers are the SQL path's (stores/histograms.py), value for value: bins use
the same arithmetic (``lo + k * step`` edges, the same correction of rounding),
NULLs are kept out of every comparison as SQL does (``not_in`` keeps them), and
the results are shaped by the same readers. tests/test_histograms.py checks both
paths against counts made in Python.
"""

from __future__ import annotations

import datetime
import threading
import numpy as np

from .base import BOOL, DATE, NUMERIC, TIME, LayerInfo, View, quote, table_name
from .histograms import Chart, date_bucket, edges, plan, without

EPOCH = datetime.datetime(1970, 1, 1)


class ChartIndex:
    """One layer's chart columns, read on first use."""

    def __init__(self, info: LayerInfo, run):
        self.info = info
        self._run = run
        self._table = quote(table_name(info.name))
        self._cols: dict[tuple, object] = {}
        self._lock = threading.RLock()  # a column may be made of another (bins of the numbers)

    # -- columns ---------------------------------------------------------------

    def _read(self, expr: str) -> np.ndarray:
        return self._run(f"SELECT {expr} AS v FROM {self._table} ORDER BY _ord", [])["v"]

    def _cached(self, key: tuple, make):
        got = self._cols.get(key)
        if got is None:
            with self._lock:
                got = self._cols.get(key)
                if got is None:
                    got = self._cols[key] = make()
        return got

    def position(self, axis: str) -> np.ndarray:
        return self._cached(("pos", axis), lambda: np.asarray(self._read(axis), dtype=np.float64))

    def numbers(self, name: str) -> np.ndarray:
        """A number field as float64, NaN where there is no value."""
        col = quote(self.info.field(name).column)
        return self._cached(("num", name), lambda: np.asarray(self._read(f"CAST({col} AS DOUBLE)"),
                                                              dtype=np.float64))

    def micros(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A time or date field as microseconds since 1970 and a has-a-value mask."""
        col = quote(self.info.field(name).column)

        def make():
            raw = self._read(f"coalesce(epoch_us(CAST({col} AS TIMESTAMP)), -9223372036854775807)")
            raw = np.asarray(raw, dtype=np.int64)
            return raw, raw != -9223372036854775807

        return self._cached(("us", name), make)

    def codes(self, name: str) -> tuple[np.ndarray, list]:
        """A text or bool field: codes 0..k-1 into its distinct values (sorted as SQL
        sorts them), k where there is no value."""
        col = quote(self.info.field(name).column)

        def make():
            values = self._run(f"SELECT DISTINCT {col} AS v FROM {self._table} WHERE {col} IS NOT NULL "
                               "ORDER BY v", [])["v"].tolist()
            raw = self._read(f"CASE WHEN {col} IS NULL THEN {len(values)} "
                             f"ELSE dense_rank() OVER (ORDER BY {col}) - 1 END")
            return _small(np.asarray(raw, dtype=np.int64), len(values)), values

        return self._cached(("code", name), make)

    def clock(self, column: str, size: int) -> np.ndarray:
        """A day (size 7) or hour (24) column, `size` where there is no value."""
        def make():
            raw = self._read(f"coalesce(CAST({quote(column)} AS INTEGER), {size})")
            raw = np.asarray(raw, dtype=np.int64)
            raw[(raw < 0) | (raw > size)] = size
            return raw.astype(np.intp)

        return self._cached(("clock", column), make)

    def bins(self, name: str, n_bins: int) -> np.ndarray:
        """Bin numbers of a number field, as the SQL path computes them; n where no value."""
        f = self.info.field(name)

        def make():
            v = self.numbers(name)
            lo, step, n, _ = edges(f, n_bins)
            out = np.full(len(v), n, dtype=np.intp)
            known = ~np.isnan(v)
            x = v[known]
            if step:
                k0 = np.clip(np.floor((x - lo) / step), 0, n - 1)
                k = k0 - (x < lo + k0 * step) + ((k0 < n - 1) & (x >= lo + (k0 + 1) * step))
                out[known] = k.astype(np.intp)
            else:
                out[known] = 0
            return out

        return self._cached(("bins", name, int(n_bins)), make)

    def buckets(self, name: str, bucket: str) -> tuple[np.ndarray, list]:
        """Date buckets of a time or date field: codes into the sorted bucket dates, k where no value."""
        col = quote(self.info.field(name).column)

        def make():
            raw = np.asarray(self._read(f"coalesce(CAST(date_diff('day', DATE '1970-01-01', "
                                        f"CAST(date_trunc('{bucket}', {col}) AS DATE)) AS INTEGER), "
                                        "-2147483647)"), dtype=np.int64)
            known = raw != -2147483647
            keys = np.unique(raw[known])
            out = np.full(len(raw), len(keys), dtype=np.intp)
            out[known] = np.searchsorted(keys, raw[known])
            days = [datetime.date(1970, 1, 1) + datetime.timedelta(days=int(d)) for d in keys]
            return out, days

        return self._cached(("dates", name, bucket), make)

    # -- masks -----------------------------------------------------------------

    def masks(self, view: View) -> dict[str, np.ndarray]:
        """One mask per filter of the view, keyed as :func:`key` names them."""
        info, out = self.info, {}
        if view.bbox is not None:
            minx, miny, maxx, maxy = (float(v) for v in view.bbox)
            lon, lat = self.position("lon"), self.position("lat")
            out["bbox"] = (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
        for k, flt in enumerate(view.filters):
            out[f"f{k}"] = self._filter(flt)
        clock = info.clock_columns
        if view.days is not None:
            lut = np.zeros(8, dtype=bool)
            lut[[d for d in view.days if 0 <= d <= 6]] = True
            out["days"] = lut[self.clock(clock[0], 7)]
        if view.hours is not None:
            start, end = view.hours
            hours = np.arange(24)
            lut = np.zeros(25, dtype=bool)
            lut[:24] = (hours >= start) & (hours <= end) if start <= end else (hours >= start) | (hours <= end)
            out["hours"] = lut[self.clock(clock[1], 24)]
        if view.start is not None or view.end is not None:
            us, known = self.micros(info.time_field.name)
            m = known.copy()
            if view.start is not None:
                m &= us >= _us(view.start)
            if view.end is not None:
                m &= us < _us(view.end)
            out["time"] = m
        return out

    def _filter(self, flt) -> np.ndarray:
        f = self.info.field(flt.field)
        if f.type == NUMERIC:
            v = self.numbers(f.name)
            if flt.op in ("min", "max"):
                return v >= float(flt.value) if flt.op == "min" else v <= float(flt.value)
            hit = np.isin(v, np.array([float(x) for x in flt.value], dtype=np.float64))
            return hit if flt.op == "in" else (np.isnan(v) | ~hit)
        if f.type in (TIME, DATE):
            us, known = self.micros(f.name)
            if flt.op in ("min", "max"):
                return known & (us >= _us(flt.value) if flt.op == "min" else us <= _us(flt.value))
            hit = known & np.isin(us, np.array([_us(x) for x in flt.value], dtype=np.int64))
            return hit if flt.op == "in" else (~known | ~hit)
        codes, values = self.codes(f.name)
        wanted = {_same(f.type, x) for x in flt.value}
        lut = np.zeros(len(values) + 1, dtype=bool)
        lut[:len(values)] = [v in wanted for v in values]
        if flt.op == "not_in":
            lut = ~lut  # and the rows without a value (code k) are kept
        return lut[codes]

    # -- charts ----------------------------------------------------------------

    def histograms(self, view: View, charts: list[Chart]) -> dict:
        info = self.info
        masks = self.masks(view)
        everything = _and(list(masks.values()), info.count)
        total = int(np.count_nonzero(everything)) if everything is not None else info.count
        out = []
        for chart in charts:
            own = _own_keys(info, view, chart)
            mask = _and([m for k, m in masks.items() if k not in own], info.count)
            query = plan(info, chart, "t", "TRUE", [], "?")  # only its reader is used
            out.append(query.read(self._counts(chart, mask)))
        return {"layer": info.name, "fields": out, "total": total}

    def _counts(self, chart: Chart, mask: np.ndarray | None) -> dict:
        """A chart's counts in the shape its SQL query answers (see histograms.plan)."""
        info, f = self.info, self.info.field(chart.field)
        if chart.part == "bins":
            _, _, n, _ = edges(f, chart.bins)
            if n == 0:
                return {"k": np.array([np.nan]), "n": np.array([_count(mask, info.count)])}
            return _groups(_bincount(self.bins(f.name, chart.bins), mask, n + 1), n)
        if chart.part in ("hours", "days"):
            clock = info.clock_columns
            column, size = (clock[1], 24) if chart.part == "hours" else (clock[0], 7)
            return _groups(_bincount(self.clock(column, size), mask, size + 1), size)
        if chart.part == "dates":
            codes, days = self.buckets(f.name, date_bucket(info, f))
            counts = _bincount(codes, mask, len(days) + 1)
            keep = [k for k in range(len(days)) if counts[k]]
            return {"k": np.array([days[k] for k in keep] + ([None] if counts[-1] else []), dtype=object),
                    "n": np.array([counts[k] for k in keep] + ([counts[-1]] if counts[-1] else []))}
        codes, values = self.codes(f.name)
        counts = _bincount(codes, mask, len(values) + 1)
        total, missing = int(counts.sum()), int(counts[-1])
        present = np.flatnonzero(counts[:-1])
        order = present[np.lexsort((present, -counts[present]))][:max(1, int(chart.top)) + 1]
        v = ([None] if missing else []) + [_plain_value(f.type, values[k]) for k in order]
        n = ([missing] if missing else []) + [int(counts[k]) for k in order]
        return {"v": np.array(v, dtype=object), "n": np.array(n, dtype=np.int64),
                "total": np.array([total]), "missing": np.array([missing])}


def _own_keys(info: LayerInfo, view: View, chart: Chart) -> set[str]:
    """The masks a chart leaves out: those :func:`histograms.without` takes from the view."""
    kept = without(info, view, chart)
    own = {f"f{k}" for k, flt in enumerate(view.filters) if flt not in kept.filters}
    if view.days is not None and kept.days is None:
        own.add("days")
    if view.hours is not None and kept.hours is None:
        own.add("hours")
    if (view.start is not None or view.end is not None) and kept.start is None and kept.end is None:
        own.add("time")
    return own


def _and(masks: list[np.ndarray], n: int) -> np.ndarray | None:
    if not masks:
        return None
    out = masks[0].copy()
    for m in masks[1:]:
        out &= m
    return out


def _count(mask, n: int) -> int:
    return n if mask is None else int(np.count_nonzero(mask))


def _bincount(codes: np.ndarray, mask: np.ndarray | None, size: int) -> np.ndarray:
    picked = codes if mask is None else codes[mask]
    return np.bincount(picked.astype(np.intp, copy=False), minlength=size)[:size]


def _groups(counts: np.ndarray, size: int) -> dict:
    """Dense counts (the last one: no value) as the (k, n) groups of a GROUP BY."""
    keys = np.flatnonzero(counts[:size]).astype(np.float64)
    n = counts[:size][counts[:size] > 0]
    if counts[size]:
        keys, n = np.append(keys, np.nan), np.append(n, counts[size])
    return {"k": keys, "n": n}


def _small(codes: np.ndarray, k: int) -> np.ndarray:
    """Codes as bincount takes them (measured: converting a million int8 codes on each
    request cost more than the 8 bytes a row kept)."""
    return codes.astype(np.intp)


def _us(value) -> int:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return (value - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(value, datetime.date):
        return (datetime.datetime(value.year, value.month, value.day) - EPOCH) // datetime.timedelta(microseconds=1)
    return _us(datetime.datetime.fromisoformat(str(value)))


TRUE = {"true", "t", "yes", "y", "1"}


def _same(kind: str, value):
    """A filter value as the field's values are held (a bool field's text forms as bools)."""
    if kind == BOOL and isinstance(value, str):
        return value.strip().lower() in TRUE
    return value


def _plain_value(kind: str, value):
    return bool(value) if kind == BOOL else value
