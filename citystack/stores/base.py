"""The store interface: what the API and the analyses need from a database.

A store holds layers. A layer is a table of points (``id``, ``lon``,
``lat`` and properties) of one of two kinds: ``points`` (listings, places)
or ``checkins`` (a user at a place, with a day of week and an hour). The API
and the analyses talk to this interface only, so a PostGIS store can stand
in for the embedded DuckDB one.

Every name that reaches SQL is checked against the layer's schema first
(:meth:`LayerInfo.field`); every value is a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..checks import DAYS, BadParam  # noqa: F401  (DAYS: re-exported)

LAYER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
NUMERIC = "number"
TEXT = "text"
KINDS = ("points", "checkins", "areas")


class StoreError(Exception):
    """A store failed (a database fault, a load that cannot go on); the message says
    why. The client's own mistakes are BadParam, UnknownLayer or UnknownField."""


class StoreUnavailable(StoreError):
    """The database cannot be reached just now (restart, failover, network): a 503,
    not the client's fault."""


class UnknownLayer(StoreError):
    def __init__(self, name: str, known: Sequence[str] = ()):
        hint = f" (layers: {', '.join(known)})" if known else " (the database has no layers)"
        super().__init__(f"no layer named {name!r}{hint}")
        self.name = name


class UnknownField(BadParam):
    def __init__(self, layer: str, name: str, known: Sequence[str] = ()):
        super().__init__(name, f"layer {layer!r} has no field {name!r} (fields: {', '.join(known)})")


TIME = "time"  # a timestamp (naive; offsets were turned into UTC at load)
DATE = "date"
BOOL = "bool"
TYPES = (NUMERIC, TEXT, BOOL, TIME, DATE)
CATEGORY_LIMIT = 100  # a category's values listed in full up to this many, then the top ones


@dataclass
class FieldInfo:
    """A layer's field. ``name`` is the name it has in the file, the one the API, the
    page and the CLI speak; ``column`` is the store's own identifier for it (checked
    and quoted, never shown). Old databases without ``column`` used the name."""

    name: str
    type: str  # one of TYPES
    min: Any = None  # numbers: floats; time and date: ISO 8601 text
    max: Any = None
    top: list[list[Any]] | None = None  # [[value, count], ...], most common first
    column: str = ""
    integer: bool = False  # a number whose values are all integers
    unit: str | None = None  # "percent" or "money", when the file wrote them so
    id: bool = False  # identifier-like (named id, or above 2^53): sent as text in JSON
    category: bool = False  # few distinct values: ``top`` lists them all, or the top ones
    distinct: int | None = None  # distinct values (text, bool, category)
    others: int = 0  # values of a category left out of ``top``

    def __post_init__(self):
        if not self.column:
            self.column = self.name

    def as_json(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type in (NUMERIC, TIME, DATE):
            out["min"], out["max"] = self.min, self.max
        if self.type == NUMERIC:
            out["integer"] = self.integer
        if self.unit:
            out["unit"] = self.unit
        if self.id:
            out["id"] = True
        if self.type in (TEXT, BOOL) or self.category:
            out["top"] = self.top or []
            out["category"] = self.category
            if self.distinct is not None:
                out["distinct"] = self.distinct
            out["others"] = self.others
        return out

    def meta(self) -> dict:
        """Everything, for the store's metadata table."""
        return dict(self.__dict__)


@dataclass
class TimeSummary:
    """A time-stamped layer's time at a glance, computed at load: the extent, and
    counts by hour of day (24), day of week (7, Monday first) and date buckets
    (``bucket`` "day" or "month"; ``dates`` [[ISO date, count], ...])."""

    field: str | None  # the time field (None for a check-in layer with day and hour only)
    min: str | None = None
    max: str | None = None
    hours: list[int] = field(default_factory=list)
    days: list[int] = field(default_factory=list)
    bucket: str | None = None
    dates: list[list[Any]] = field(default_factory=list)

    def as_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class LayerInfo:
    name: str
    kind: str
    count: int
    extent: list[float] | None  # [minlon, minlat, maxlon, maxlat]
    fields: list[FieldInfo]
    version: int
    source: str = ""
    places: str | None = None  # a checkins layer's places layer
    time: TimeSummary | None = None  # a layer with a time field, or a check-in layer
    name_field: str | None = None  # the field that names a feature (tooltips, labels)
    colour_field: str | None = None  # the field to colour by at first (never an id or a coordinate)
    big_ids: bool = False  # feature ids beyond 2^53 (or not integers): sent as text in JSON
    ends: list[str] | None = None  # a trips layer: its end position's fields [lon, lat] (points: the starts)

    def field(self, name: str) -> FieldInfo:
        for f in self.fields:
            if f.name == name:
                return f
        raise UnknownField(self.name, name, [f.name for f in self.fields])

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def time_field(self) -> FieldInfo | None:
        return self.field(self.time.field) if self.time and self.time.field else None

    @property
    def clock_columns(self) -> tuple[str, str] | None:
        """The columns of day of week (0 = Monday) and hour of day, if the layer has them:
        a check-in layer's own ``day`` and ``hour``, or those derived at load from the
        time field (``_dow``, ``_hour``)."""
        if self.kind == "checkins":
            return ("day", "hour")
        if self.time_field is not None:
            return ("_dow", "_hour")
        return None

    def as_json(self) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "extent": self.extent,
            "fields": [f.as_json() for f in self.fields],
            "version": self.version,
            "source": self.source,
            "time": self.time.as_json() if self.time else None,
            "name_field": self.name_field,
            "colour_field": self.colour_field,
            "big_ids": self.big_ids,
            "ends": self.ends,
        }
        if self.places:
            out["places"] = self.places
        return out


def layer_meta(fields: list[FieldInfo], time: TimeSummary | None = None, name_field: str | None = None,
               colour_field: str | None = None, big_ids: bool = False, ends: list[str] | None = None) -> dict:
    """What the metadata table's ``fields`` column holds for a layer (as JSON)."""
    return {"fields": [f.meta() for f in fields], "time": time.as_json() if time else None,
            "name_field": name_field, "colour_field": colour_field, "big_ids": big_ids, "ends": ends}


def read_layer_meta(meta) -> dict:
    """LayerInfo keyword arguments from the ``fields`` column (a list in older databases)."""
    if isinstance(meta, list):
        meta = {"fields": meta}
    time = meta.get("time")
    return {"fields": [FieldInfo(**f) for f in meta.get("fields", [])],
            "time": TimeSummary(**time) if time else None,
            "name_field": meta.get("name_field"), "colour_field": meta.get("colour_field"),
            "big_ids": bool(meta.get("big_ids")), "ends": meta.get("ends")}


FILTER_OPS = ("in", "not_in", "min", "max")


@dataclass
class Filter:
    """A condition on a field (by its public name): ``in`` / ``not_in`` a tuple of values,
    or ``min`` / ``max`` (inclusive) for numbers, dates and times. Values are already
    parsed to the field's type (float, str, bool, datetime.date, datetime.datetime)."""

    field: str
    op: str  # one of FILTER_OPS
    value: Any  # a tuple for in / not_in


@dataclass
class View:
    """What part of a layer a request looks at."""

    bbox: tuple[float, float, float, float] | None = None
    filters: list[Filter] = field(default_factory=list)
    days: list[int] | None = None  # 0 = Monday; layers with a time field or check-ins
    hours: tuple[int, int] | None = None  # inclusive; wraps past midnight when start > end
    start: Any = None  # datetime.datetime: the time field >= start (from=)
    end: Any = None  # datetime.datetime: the time field < end (to=)

    def key(self) -> tuple:
        return (self.bbox, tuple((f.field, f.op, f.value) for f in self.filters),
                tuple(self.days or ()), self.hours, self.start, self.end)


def quote(name: str) -> str:
    """Quote an identifier that has already been checked against the schema."""
    return '"' + name.replace('"', '""') + '"'


def table_name(layer: str) -> str:
    if not LAYER_NAME.match(layer):
        raise StoreError(f"invalid layer name {layer!r}: use lower-case letters, digits and _")
    return f"layer_{layer}"


@dataclass
class Bins:
    """Counts (and stats of one field) on a grid over a bbox."""

    bbox: tuple[float, float, float, float]
    nx: int
    ny: int
    i: np.ndarray
    j: np.ndarray
    count: np.ndarray
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # mean, min, max


def grid_shape(bbox, cells: int) -> tuple[int, int]:
    """Columns and rows for about-square cells, `cells` along the longer side."""
    minx, miny, maxx, maxy = bbox
    mid = np.radians((miny + maxy) / 2)
    width = max((maxx - minx) * np.cos(mid), 1e-12)
    height = max(maxy - miny, 1e-12)
    if width >= height:
        return cells, max(1, int(round(cells * height / width)))
    return max(1, int(round(cells * width / height))), cells


class Store:
    """Interface every store implements."""

    kind = "abstract"

    def layers(self) -> list[LayerInfo]:
        raise NotImplementedError

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers():
            if info.name == name:
                return info
        raise UnknownLayer(name, [i.name for i in self.layers()])

    def data_version(self) -> str:
        """Changes whenever any layer changes; every process can read it."""
        raise NotImplementedError

    def features(self, layer: str, view: View, properties: Sequence[str] | None,
                 limit: int, offset: int = 0) -> dict[str, np.ndarray]:
        """Columns ``id``, ``lon``, ``lat`` and the properties, in a stable order."""
        raise NotImplementedError

    def count(self, layer: str, view: View) -> int:
        raise NotImplementedError

    def bins(self, layer: str, view: View, cells: int, field: str | None) -> Bins:
        raise NotImplementedError

    def columns(self, layer: str, view: View, names: Sequence[str],
                sample: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Numpy columns for analyses; at most `sample` rows, drawn reproducibly."""
        raise NotImplementedError

    def covisits(self, layer: str, view: View, min_shared: int = 2) -> dict[str, np.ndarray]:
        """Pairs of places of a check-in layer visited by at least `min_shared` of the
        same users in view: columns ``a`` < ``b`` (place ids) and ``weight`` (the number
        of users), ordered by a, b."""
        raise NotImplementedError

    def broadcaster(self):
        """The fan-out for the 2015 status lines. In-process here; a store
        shared by several processes returns one that reaches them all."""
        from ..events.broadcast import Broadcaster

        return Broadcaster()

    def close(self) -> None:
        pass
