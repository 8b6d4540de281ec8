"""The SQL of the stores, written once.

Both stores keep a layer as a table of the same shape (``_ord``, ``id``,
``lon``, ``lat``, the properties) and answer the interface with the same
queries. :class:`SQLStore` holds those queries; a store subclasses it and
gives only what differs between the databases:

- ``MARK``: the parameter placeholder (``?`` or ``%s``);
- :meth:`_snapshot`: a layer's description and a way to run queries on the
  data that description was read from (execution, connections);
- :meth:`_where`: the view's condition (PostGIS leads it with an index
  search on ``geom``);
- ``ORDER``: how rows come in ``_ord`` order (DuckDB scans tables in that
  order already; PostgreSQL needs ``ORDER BY _ord``);
- ``SAMPLE_KEY``: the sort key of a reproducible sample (``hash`` or
  ``hashint8`` of the position and the seed);
- ``COLUMNS_READ_ORD``: whether ``columns`` reads ``_ord`` too, for the
  store to put the rows in order with;
- :meth:`_mean`: the mean of a bin (PostgreSQL's ``avg`` of floats differs
  from DuckDB's in the last bits; an exact sum and one division agree);
- :meth:`_fetch_columns`: how the rows of ``columns`` are fetched.

Every name that reaches SQL has been checked against the layer's schema
(:meth:`LayerInfo.field`) and is quoted; every value is a bound parameter.
"""

from __future__ import annotations

import contextlib
import dataclasses

from typing import Callable, Sequence

import numpy as np

from .base import (DATE, NUMERIC, TIME, BadParam, Bins, LayerInfo, Store, StoreError, View, grid_shape, quote,
                   table_name)

Run = Callable[[str, Sequence], dict]  # (sql, params) -> numpy columns, by the store's column names
POSITION = ("id", "lon", "lat")


def where_clause(layer: LayerInfo, view: View, mark: str = "?") -> tuple[str, list]:
    """SQL condition and bound values for a view; names are checked against the layer."""
    parts: list[str] = []
    values: list = []
    if view.bbox is not None:
        minx, miny, maxx, maxy = view.bbox
        parts.append(f"lon >= {mark} AND lon <= {mark} AND lat >= {mark} AND lat <= {mark}")
        values += [minx, maxx, miny, maxy]
    for flt in view.filters:
        info = layer.field(flt.field)
        col = quote(info.column)
        if flt.op in ("in", "not_in"):
            given = list(flt.value)
            if not given:
                raise BadParam(flt.field, "no values given")
            test = f"{col} IN ({', '.join([mark] * len(given))})"
            # not_in keeps the rows without a value: "not Shared room" includes the unknown ones.
            parts.append(test if flt.op == "in" else f"({col} IS NULL OR NOT {test})")
            values += given
        elif flt.op in ("min", "max"):
            if info.type not in (NUMERIC, TIME, DATE):
                raise BadParam(f"{flt.field}_{flt.op}", f"field {flt.field!r} is {info.type}: "
                                                        "ranges apply to numbers, dates and times")
            parts.append(f"{col} {'>=' if flt.op == 'min' else '<='} {mark}")
            values.append(flt.value)
        else:  # pragma: no cover - the API builds only these
            raise StoreError(f"unknown filter operator {flt.op!r}")
    if view.days is not None or view.hours is not None:
        clock = layer.clock_columns
        if clock is None:
            raise BadParam("days" if view.days is not None else "hours",
                           f"layer {layer.name!r} has no time field: day and hour filters need one")
        day, hour = (quote(c) for c in clock)
        if view.days is not None:
            parts.append(f"{day} IN (" + ", ".join([mark] * len(view.days)) + ")")
            values += list(view.days)
        if view.hours is not None:
            start, end = view.hours
            joiner = "AND" if start <= end else "OR"
            parts.append(f"({hour} >= {mark} {joiner} {hour} <= {mark})")
            values += [start, end]
    if view.start is not None or view.end is not None:
        time = layer.time_field
        if time is None:
            raise BadParam("from" if view.start is not None else "to",
                           f"layer {layer.name!r} has no time field: from and to need one")
        if view.start is not None:
            parts.append(f"{quote(time.column)} >= {mark}")
            values.append(view.start)
        if view.end is not None:
            parts.append(f"{quote(time.column)} < {mark}")
            values.append(view.end)
    return (" AND ".join(parts) or "TRUE"), values


def selected_fields(info: LayerInfo, properties: Sequence[str] | None) -> list:
    """The FieldInfos a features request asks for (all, when None), checked."""
    return list(info.fields) if properties is None else [info.field(p) for p in properties]


def feature_columns(out: dict, fields: list) -> dict:
    """A features answer: ``id``, ``lon``, ``lat`` and ``properties`` (public name ->
    column), from columns fetched by the store's own names. A field may be named like a
    position (a GeoJSON property ``lat``): it stays apart, under ``properties``."""
    return {"id": out["id"], "lon": out["lon"], "lat": out["lat"],
            "properties": {f.name: out[f.column] for f in fields}}


class SQLStore(Store):
    """A store whose layers are SQL tables; subclasses give the dialect (see the module)."""

    MARK = "?"
    ORDER = ""
    SAMPLE_KEY = "hash(_ord + ?)"
    COLUMNS_READ_ORD = False

    # -- what a store gives ----------------------------------------------------

    def _snapshot(self, layer: str) -> contextlib.AbstractContextManager[tuple[LayerInfo, Run]]:
        """A context giving (the layer's description, a query runner on the same data):
        the schema checked is the schema queried, even while a load replaces the layer."""
        raise NotImplementedError

    def _where(self, info: LayerInfo, view: View) -> tuple[str, list]:
        return where_clause(info, view, self.MARK)

    def _mean(self, col: str) -> str:
        return f"avg({col})"

    def _fetch_columns(self, info: LayerInfo, run: Run, sql: str, values: list,
                       names: list[str]) -> dict[str, np.ndarray]:
        return run(sql, values)

    # -- the interface ---------------------------------------------------------

    def features(self, layer, view, properties, limit, offset=0):
        with self._snapshot(layer) as (info, run):
            return self._features(info, run, view, properties, limit, offset)

    def _features(self, info: LayerInfo, run: Run, view: View, properties, limit, offset) -> dict:
        sql, values, fields = self._features_sql(info, view, properties, limit, offset)
        return feature_columns(run(sql, values), fields)

    def _features_sql(self, info: LayerInfo, view: View, properties, limit, offset) -> tuple[str, list, list]:
        """The features query: (sql, values, the fields selected), columns id, lon, lat, fields."""
        fields = selected_fields(info, properties)
        where, values = self._where(info, view)
        m = self.MARK
        cols = ", ".join(list(POSITION) + [quote(f.column) for f in fields])
        sql = f"SELECT {cols} FROM {quote(table_name(info.name))} WHERE {where}{self.ORDER} LIMIT {m} OFFSET {m}"
        return sql, values + [int(limit), int(offset)], fields

    def count(self, layer, view):
        with self._snapshot(layer) as (info, run):
            where, values = self._where(info, view)
            out = run(f"SELECT count(*) AS n FROM {quote(table_name(info.name))} WHERE {where}", values)
            return int(out["n"][0])

    def bins(self, layer, view, cells, field=None):
        with self._snapshot(layer) as (info, run):
            bbox = view.bbox or tuple(info.extent or (0, 0, 1, 1))
            view = dataclasses.replace(view, bbox=bbox)  # every filter kept, from/to too
            nx, ny = grid_shape(bbox, cells)
            minx, miny, maxx, maxy = (float(v) for v in bbox)
            dx = (maxx - minx) / nx or 1e-12
            dy = (maxy - miny) / ny or 1e-12
            where, values = self._where(info, view)
            value, stats = "", ""
            if field:
                f = info.field(field)
                if f.type != NUMERIC:
                    raise BadParam("field", f"field {field!r} is not numeric")
                value = f", {quote(f.column)} AS v"
                stats = f", {self._mean('v')} AS mean, min(v) AS min, max(v) AS max"
            m = self.MARK
            # Only the cell and the value leave the inner query: a property named i, j or v cannot clash.
            sql = (f"SELECT i, j, count(*) AS count{stats} FROM ("
                   f"SELECT least(CAST(floor((lon - {m}) / {m}) AS INTEGER), {m}) AS i, "
                   f"least(CAST(floor((lat - {m}) / {m}) AS INTEGER), {m}) AS j{value} "
                   f"FROM {quote(table_name(info.name))} WHERE {where}) AS cells GROUP BY i, j ORDER BY j, i")
            out = run(sql, [minx, dx, nx - 1, miny, dy, ny - 1] + values)
        return Bins(bbox=bbox, nx=nx, ny=ny, i=out["i"], j=out["j"], count=out["count"],
                    stats={k: out[k] for k in ("mean", "min", "max") if k in out})

    def columns(self, layer, view, names, sample=None, seed=0):
        with self._snapshot(layer) as (info, run):
            # Position names win: a field named like one (a GeoJSON property lat) is not an analysis input.
            checked = [n if n in POSITION else info.field(n).column for n in names]
            where, values = self._where(info, view)
            select = (["_ord"] if self.COLUMNS_READ_ORD else []) + [quote(n) for n in checked]
            sql = f"SELECT {', '.join(select)} FROM {quote(table_name(info.name))} WHERE {where}"
            if sample:  # reproducible: the rows with the smallest hash of their position and the seed
                sql += f" ORDER BY {self.SAMPLE_KEY} LIMIT {self.MARK}"
                values = values + [int(seed), int(sample)]
            got = self._fetch_columns(info, run, sql, values, checked)
            return {name: got[col] for name, col in zip(names, checked)}

    def covisits(self, layer, view, min_shared=2):
        """Pairs of places (a < b) visited by at least `min_shared` of the same users:
        one self-join of the distinct (user, place) pairs in view."""
        with self._snapshot(layer) as (info, run):
            if info.kind != "checkins":
                raise BadParam("layer", f"layer {layer!r} is not a check-in layer")
            where, values = self._where(info, view)
            sql = (f"WITH visits AS (SELECT DISTINCT \"user\", place FROM {quote(table_name(info.name))} "
                   f"WHERE {where}) SELECT a.place AS a, b.place AS b, count(*) AS weight FROM visits a "
                   "JOIN visits b ON a.\"user\" = b.\"user\" AND a.place < b.place "
                   f"GROUP BY a.place, b.place HAVING count(*) >= {self.MARK} ORDER BY a, b")
            return run(sql, values + [int(min_shared)])


    def histograms(self, layer, view, specs):
        """The distributions of linked charts (stores/histograms.py): for each chart of
        `specs` (Chart, or field names, each giving its charts), the points of `view`
        that pass every filter but the chart's own, counted in the database, one
        aggregate query per chart. ``{"layer", "fields": [chart...], "total"}``, total
        being the points that pass every filter."""
        from .histograms import Chart, charts_for, plan, without

        with self._snapshot(layer) as (info, run):
            charts: list = []
            for spec in specs:
                charts += [spec] if isinstance(spec, Chart) else charts_for(info, spec)
            table = quote(table_name(info.name))
            where, values = self._where(info, view)
            total = int(run(f"SELECT count(*) AS n FROM {table} WHERE {where}", values)["n"][0])
            out = []
            for chart in charts:
                info.field(chart.field)
                where, values = self._where(info, without(info, view, chart))
                query = plan(info, chart, table, where, values, self.MARK)
                out.append(query.read(run(query.sql, query.values)))
            return {"layer": info.name, "fields": out, "total": total}

    def pages(self, layer, view, properties, size=10_000):
        """The features of a view, page after page of at most `size` rows, in ``_ord``
        order (keyset paging: each page starts after the last ``_ord`` of the one
        before, so a page costs the same wherever it is): a generator of features
        answers. On DuckDB the whole run reads one version of the file."""
        with self._snapshot(layer) as (info, run):
            fields = selected_fields(info, properties)
            where, values = self._where(info, view)
            m = self.MARK
            cols = ", ".join(["_ord", *POSITION] + [quote(f.column) for f in fields])
            sql = (f"SELECT {cols} FROM {quote(table_name(info.name))} WHERE {where} AND _ord > {m} "
                   f"ORDER BY _ord LIMIT {m}")
            last = 0
            while True:
                out = run(sql, values + [last, int(size)])
                n = len(out["id"])
                if n:
                    last = int(out["_ord"][-1])
                    yield feature_columns(out, fields)
                if n < size:
                    return

    # -- density images (issue 11) -------------------------------------------------

    DENSITY_STATS = ("count", "mean", "sum", "min", "max")

    def density(self, layer, view, width, height, field=None, stat="count"):
        """Per-pixel counts (or a statistic of the numeric `field`) of the view on a
        `width` x `height` grid over its bbox (the layer's extent when it has none),
        binned exactly as ``numpy.histogram2d(lon, lat, [width, height], range=bbox)``
        bins: equal widths, each pixel holding its west/south edge, the last column and
        row their far edge too. One GROUP BY over the pixels of the view.

        The pixel is first estimated as floor((x - x0) / step), then moved by one where
        that estimate and the edges differ in the last bits: the edges are computed as
        numpy.linspace computes them (k * step + x0, the last one the bbox's own edge),
        and a point belongs to the last edge at or below it."""
        if stat not in self.DENSITY_STATS:
            raise BadParam("stat", f"expected one of {', '.join(self.DENSITY_STATS)}, got {stat!r}")
        if stat != "count" and not field:
            raise BadParam("field", f"stat={stat} needs a numeric field")
        with self._snapshot(layer) as (info, run):
            bbox = tuple(float(v) for v in (view.bbox or info.extent or (0, 0, 1, 1)))
            view = View(bbox=bbox, filters=view.filters, days=view.days, hours=view.hours,
                        start=view.start, end=view.end)
            x0, y0, x1, y1 = bbox
            if not (x1 > x0 and y1 > y0):
                raise BadParam("bbox", "a density image needs a view with an area (min below max)")
            sx, sy = (x1 - x0) / width, (y1 - y0) / height
            if sx < 1e-10 or sy < 1e-10:
                raise BadParam("bbox", "too small for that many pixels (a pixel must span 1e-10 degrees or more)")
            value = ""
            if field:
                f = info.field(field)
                if f.type != NUMERIC:
                    raise BadParam("field", f"field {field!r} is {f.type}: density statistics need a number")
                value = f", {quote(f.column)} AS v"
            where, values = self._where(info, view)
            m = self.MARK
            dbl = "DOUBLE PRECISION"

            def pixel(coord: str, start: float, step: float, last: int, name: str) -> tuple[str, list]:
                # i0: the estimate; then one down if below its lower edge, one up if at or above
                # the next edge (not past the last pixel: the far edge belongs to it).
                sql = (f"{name}0 - CASE WHEN {coord} < CAST({name}0 AS {dbl}) * {m} + {m} THEN 1 ELSE 0 END "
                       f"+ CASE WHEN {name}0 < {m} AND {coord} >= CAST({name}0 + 1 AS {dbl}) * {m} + {m} "
                       f"THEN 1 ELSE 0 END AS {name}")
                return sql, [step, start, last, step, start]

            isql, ivals = pixel("x", x0, sx, width - 1, "i")
            jsql, jvals = pixel("y", y0, sy, height - 1, "j")
            stats = {"count": "", "sum": ", sum(v) AS s", "min": ", min(v) AS s", "max": ", max(v) AS s",
                     "mean": f", {self._mean('v')} AS s"}[stat]
            counted = "count(v)" if field else "count(*)"
            # One integer key per pixel (j * width + i) to group on: quicker than the pair.
            sql = (f"SELECT k, {counted} AS n{stats} FROM (SELECT j * {m} + i AS k{', v' if field else ''} FROM ("
                   f"SELECT {isql}, {jsql}{', v' if field else ''} FROM ("
                   f"SELECT lon AS x, lat AS y{', v' if field else ''}, "
                   f"least(greatest(CAST(floor((lon - {m}) / {m}) AS INTEGER), 0), {m}) AS i0, "
                   f"least(greatest(CAST(floor((lat - {m}) / {m}) AS INTEGER), 0), {m}) AS j0 FROM ("
                   f"SELECT lon, lat{value} FROM {quote(table_name(info.name))} WHERE {where}) AS rows"
                   f") AS estimated) AS pixels) AS keyed GROUP BY k")
            params = [int(width)] + ivals + jvals + [x0, sx, width - 1, y0, sy, height - 1] + values
            out = run(sql, params)
        return density_image(bbox, width, height, out, field, stat)

    # -- areas layers (stores/areas.py) ------------------------------------------

    def area_features(self, layer, view, limit=None, offset=0):
        """An areas layer's areas in view (bounding box overlap, field filters), in _ord
        order: ``id``, ``lon``, ``lat`` (a point inside), ``wkb``, ``km2``, ``properties``."""
        from .areas import area_rows

        with self._snapshot(layer) as (info, run):
            rows = area_rows(info, run, view, self.MARK, [f.column for f in info.fields], limit, offset,
                             where_clause)
            return {"id": rows["id"], "lon": rows["lon"], "lat": rows["lat"], "wkb": rows["wkb"],
                    "km2": rows["_km2"], "properties": {f.name: rows[f.column] for f in info.fields}}

    def area_stats(self, layer, view, areas, field=None, category=None, users=None):
        """Points of `layer` in `view` counted by the areas of `areas` in view (see
        stores/areas.py for the rule): ``id`` of each area in view (_ord order), ``count``,
        with `field` ``n``, ``sum``, ``min``, ``max``, ``median``, with `category` ``share``
        (a dict of value counts per area), with `users` (a field) ``users``, its distinct values
        per area, and ``outside`` (points in view in no area)."""
        from .areas import area_rows, assign, envelope, group_stats, require_areas

        with self._snapshot(areas) as (ainfo, arun):
            require_areas(ainfo)
            inview = area_rows(ainfo, arun, View(bbox=view.bbox), self.MARK)
            env = envelope(view.bbox, inview)
            cand = inview if view.bbox is None else area_rows(ainfo, arun, View(bbox=env), self.MARK)
        pview = View(bbox=env, filters=view.filters, days=view.days, hours=view.hours,
                     start=view.start, end=view.end)
        names = ["lon", "lat"] + list(dict.fromkeys(n for n in (field, category, users) if n))
        cols = self.columns(layer, pview, names)
        lon, lat = np.asarray(cols["lon"], dtype=np.float64), np.asarray(cols["lat"], dtype=np.float64)
        hit = assign(lon, lat, cand)
        # Areas found through the envelope but not in view: their points count for neither.
        position = {int(o): k for k, o in enumerate(inview["_ord"].tolist())}
        to_view = np.array([position.get(int(o), -2) for o in cand["_ord"].tolist()] + [-1], dtype=np.int64)
        area = to_view[hit]  # hit == -1 picks the last entry: -1
        seen = np.ones(len(lon), dtype=bool)
        if view.bbox is not None:
            minx, miny, maxx, maxy = view.bbox
            seen = (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
        out = group_stats(np.where(area >= 0, area, -1), len(inview["_ord"]),
                          cols[field] if field else None, cols[category] if category else None)
        if users:
            from .areas import distinct_per_group

            inside = area >= 0
            out["users"] = distinct_per_group(area[inside], len(inview["_ord"]),
                                              np.asarray(cols[users], dtype=object)[inside])
        out["id"] = inview["id"]
        out["outside"] = int(np.count_nonzero((area == -1) & seen))
        return out


@dataclasses.dataclass
class Density:
    """A density image: ``counts`` (uint32) and, for a statistic, ``values`` (float64, NaN
    where no point has a value), each ``height`` rows of ``width`` pixels, north row first."""

    bbox: tuple[float, float, float, float]
    width: int
    height: int
    counts: np.ndarray
    values: np.ndarray | None
    field: str | None
    stat: str


def density_image(bbox, width: int, height: int, out: dict, field, stat: str) -> Density:
    key = np.asarray(out["k"], dtype=np.int64)
    i, j = key % width, key // width
    row = (height - 1 - j) * width + i  # north row first
    counts = np.zeros(width * height, dtype=np.uint32)
    counts[row] = np.asarray(out["n"], dtype=np.uint32)
    values = None
    if stat != "count":
        values = np.full(width * height, np.nan)
        values[row] = np.asarray(out["s"], dtype=np.float64)
        values[counts == 0] = np.nan
    return Density(bbox, width, height, counts.reshape(height, width),
                   None if values is None else values.reshape(height, width), field, stat)
