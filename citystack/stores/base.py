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
KINDS = ("points", "checkins")


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


@dataclass
class FieldInfo:
    name: str
    type: str  # NUMERIC or TEXT
    min: float | None = None
    max: float | None = None
    top: list[list[Any]] | None = None  # [[value, count], ...] for text fields

    def as_json(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == NUMERIC:
            out["min"], out["max"] = self.min, self.max
        else:
            out["top"] = self.top or []
        return out


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

    def field(self, name: str) -> FieldInfo:
        for f in self.fields:
            if f.name == name:
                return f
        raise UnknownField(self.name, name, [f.name for f in self.fields])

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def as_json(self) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "extent": self.extent,
            "fields": [f.as_json() for f in self.fields],
            "version": self.version,
            "source": self.source,
        }
        if self.places:
            out["places"] = self.places
        return out


@dataclass
class Filter:
    field: str
    op: str  # "eq", "min" or "max"
    value: Any


@dataclass
class View:
    """What part of a layer a request looks at."""

    bbox: tuple[float, float, float, float] | None = None
    filters: list[Filter] = field(default_factory=list)
    days: list[int] | None = None  # 0 = Monday, checkins layers only
    hours: tuple[int, int] | None = None  # inclusive; wraps past midnight when start > end

    def key(self) -> tuple:
        return (self.bbox, tuple((f.field, f.op, f.value) for f in self.filters),
                tuple(self.days or ()), self.hours)


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
