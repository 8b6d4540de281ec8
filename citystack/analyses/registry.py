"""The registry of analyses.

An analysis is one module that declares its parameters once and implements
one function over the points of a view::

    from citystack.analyses.registry import Param, analysis

    @analysis(
        name="centroid",
        title="Centroid",
        description="The mean position of the points in view.",
        params=[Param("weight", "field", default=None, help="numeric field to weight by")],
    )
    def centroid(data, params, progress):
        progress("averaging")
        return {"lon": float(data.lon.mean()), "lat": float(data.lat.mean())}

From that declaration the API validates requests, the OpenAPI document and
``GET /api/analyses`` describe the parameters and the page builds controls.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .. import checks
from ..checks import BadParam  # noqa: F401  (analyses raise it from here)
from ..stores.base import NUMERIC, LayerInfo, Store, View

BUILTIN = ("heatmap", "interpolate", "clusters", "network", "areas", "flows")
TYPES = ("int", "float", "bool", "choice", "field", "str")


@dataclass
class Param:
    name: str
    type: str  # one of TYPES; "field" is the name of a field of the layer
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: Sequence[str] | None = None
    help: str = ""
    numeric: bool = True  # for "field": must the field be numeric?

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name}: type must be one of {TYPES}")

    def parse(self, raw: Any, layer: LayerInfo | None = None) -> Any:
        """The value of a raw (usually string) input, or BadParam naming what is wrong."""
        if raw is None or raw == "":
            if self.type != "field" or self.default is None:
                return self.default
            raw = self.default  # a default field name must be a field of this layer too
        if self.type == "int":
            return checks.integer(raw, self.name, self.min, self.max if self.max is not None else checks.BIGINT)
        if self.type == "float":
            return checks.number(raw, self.name, self.min, self.max)
        if self.type == "bool":
            return checks.boolean(raw, self.name)
        if self.type == "choice":
            return checks.choice(raw, self.name, self.choices or ())
        if self.type == "field":
            if layer is not None:
                names = [f.name for f in layer.fields if f.type == NUMERIC or not self.numeric]
                if raw not in names:
                    kind = "numeric field" if self.numeric else "field"
                    raise BadParam(self.name, f"layer {layer.name!r} has no {kind} {raw!r} "
                                              f"(choose from {', '.join(names) or 'none'})")
            return raw
        return str(raw)

    def schema(self) -> dict:
        """JSON Schema of the parameter, for OpenAPI and the page."""
        kind = {"int": "integer", "float": "number", "bool": "boolean"}.get(self.type, "string")
        out: dict[str, Any] = {"type": kind}
        if self.default is not None:
            out["default"] = self.default
        if self.min is not None:
            out["minimum"] = self.min
        if self.max is not None:
            out["maximum"] = self.max
        if self.choices:
            out["enum"] = list(self.choices)
        return out

    def describe(self) -> dict:
        out = {"name": self.name, "type": self.type, "default": self.default, "help": self.help}
        for key in ("min", "max"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.type == "field":
            out["numeric"] = self.numeric
        return out


@dataclass
class Analysis:
    name: str
    title: str
    description: str
    params: list[Param]
    run: Callable[["Input", dict, Callable], dict]
    kinds: tuple[str, ...] = ("points", "checkins")

    def parse(self, raw: dict, layer: LayerInfo | None = None) -> dict:
        """Validated parameters; unknown names are errors too."""
        known = {p.name for p in self.params}
        for name in raw:
            if name not in known:
                raise BadParam(name, f"{self.name} has no parameter {name!r} "
                                     f"(parameters: {', '.join(sorted(known)) or 'none'})")
        return {p.name: p.parse(raw.get(p.name), layer) for p in self.params}

    def describe(self) -> dict:
        return {"name": self.name, "title": self.title, "description": self.description,
                "kinds": list(self.kinds), "params": [p.describe() for p in self.params]}


REGISTRY: dict[str, Analysis] = {}


def analysis(name: str, title: str, description: str, params: Sequence[Param] = (),
             kinds: Sequence[str] = ("points", "checkins")):
    """Register the decorated function as an analysis."""

    def register(func):
        REGISTRY[name] = Analysis(name, title, description, list(params), func, tuple(kinds))
        return func

    return register


def load(extra: Sequence[str] = ()) -> dict[str, Analysis]:
    """Import the built-in analyses and any extra modules (dotted names)."""
    for module in BUILTIN:
        importlib.import_module(f"{__package__}.{module}")
    for module in extra:
        importlib.import_module(module)
    return REGISTRY


class Input:
    """The points of a view handed to an analysis, as numpy columns.

    Columns are read once, on first use. When the view holds more than
    `max_points` points, a reproducible random sample of that size is used
    and :attr:`sampled` says so. :attr:`max_bytes` is the memory an
    analysis's large intermediate steps may take (CITYSTACK_ANALYSIS_MAX_BYTES):
    steps that would need more sample or refuse their input, and say so.
    """

    def __init__(self, store: Store, layer: LayerInfo, view: View, max_points: int, seed: int = 0,
                 max_bytes: int | None = None):
        self.store = store
        self.layer = layer
        self.view = view
        self.bbox = view.bbox or tuple(layer.extent)
        self.max_points = max_points
        self.max_bytes = max_bytes  # memory the analysis's large steps may use (None: no bound)
        self.seed = seed
        self._count: int | None = None
        self._cache: dict[str, np.ndarray] = {}

    @property
    def count(self) -> int:
        """How many points the view holds (before sampling)."""
        if self._count is None:
            self._count = self.store.count(self.layer.name, self.view)
        return self._count

    @property
    def sampled(self) -> bool:
        return self.count > self.max_points

    def columns(self, *names: str) -> dict[str, np.ndarray]:
        missing = [n for n in names if n not in self._cache]
        if missing:
            # One read for all columns asked so far, so that later columns line up with earlier ones.
            wanted = sorted(set(self._cache) | set(missing) | {"lon", "lat"})
            sample = self.max_points if self.sampled else None
            self._cache = self.store.columns(self.layer.name, self.view, wanted, sample, self.seed)
        return {n: self._cache[n] for n in names}

    @property
    def lon(self) -> np.ndarray:
        return self.columns("lon")["lon"]

    @property
    def lat(self) -> np.ndarray:
        return self.columns("lat")["lat"]

    def info(self) -> dict:
        """What every result says about its input."""
        return {"layer": self.layer.name, "bbox": list(self.bbox), "count": self.count,
                "used": min(self.count, self.max_points), "sampled": self.sampled}
