"""Grids over a bbox and the local metric projection the analyses share.

Analyses measure distances in metres (bandwidths, DBSCAN's eps), so positions
are projected to a plane around the bbox centre. Over a city the
equirectangular projection is within a fraction of a percent of true
distances, and it is linear in lon and lat: cells equal in degrees are equal
in metres, which the heatmap relies on (evenly spaced cell centres).

Arrays are indexed ``[row, column]`` with row 0 at the SOUTH edge (``lat``
grows with the row) while computing; :func:`grid_result` flips them to the
north-to-south row order the page draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..stores.base import grid_shape

EARTH_RADIUS = 6371008.8  # metres, the mean radius
MAX_SIDE = 400  # cells along a side, whatever way the grid was asked for
PAD = 0.001  # degrees (about 100 m) either side of a bbox with no width or height


class Projection:
    """Equirectangular projection centred on (lon0, lat0), in metres."""

    def __init__(self, lon0: float, lat0: float):
        self.lon0, self.lat0 = float(lon0), float(lat0)
        self.kx = EARTH_RADIUS * math.cos(math.radians(self.lat0)) * math.pi / 180.0
        self.ky = EARTH_RADIUS * math.pi / 180.0

    @classmethod
    def for_bbox(cls, bbox) -> "Projection":
        minx, miny, maxx, maxy = bbox
        return cls((minx + maxx) / 2, (miny + maxy) / 2)

    def forward(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def inverse(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(x, dtype=float) / self.kx + self.lon0,
                np.asarray(y, dtype=float) / self.ky + self.lat0)


@dataclass
class Grid:
    """`nx` x `ny` equal cells over `bbox`, with their centres in degrees and metres."""

    bbox: tuple[float, float, float, float]
    nx: int
    ny: int

    def __post_init__(self):
        self.bbox = _widened(self.bbox)
        minx, miny, maxx, maxy = self.bbox
        self.nx, self.ny = int(self.nx), int(self.ny)
        self.proj = Projection.for_bbox(self.bbox)
        self.lon = minx + (np.arange(self.nx) + 0.5) * (maxx - minx) / self.nx
        self.lat = miny + (np.arange(self.ny) + 0.5) * (maxy - miny) / self.ny
        self.x, _ = self.proj.forward(self.lon, self.proj.lat0)
        _, self.y = self.proj.forward(self.proj.lon0, self.lat)

    @property
    def shape(self) -> tuple[int, int]:
        return self.ny, self.nx

    @property
    def cell_m(self) -> tuple[float, float]:
        """Width and height of a cell in metres."""
        minx, miny, maxx, maxy = self.bbox
        return (maxx - minx) / self.nx * self.proj.kx, (maxy - miny) / self.ny * self.proj.ky

    def project(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        return self.proj.forward(lon, lat)

    def mesh_m(self) -> tuple[np.ndarray, np.ndarray]:
        """Metre coordinates of every cell centre, each of shape (ny, nx)."""
        return np.meshgrid(self.x, self.y)


def grid_for_cells(bbox, cells: int) -> Grid:
    """About-square cells, `cells` of them along the longer side."""
    bbox = _widened(bbox)
    nx, ny = grid_shape(bbox, int(cells))
    return Grid(bbox, nx, ny)


def _widened(bbox) -> tuple[float, float, float, float]:
    """The bbox as floats, a side of zero length (one point, or points on a
    line) widened to PAD degrees either way, so cells have a size."""
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if not (maxx >= minx and maxy >= miny):
        raise ValueError(f"bbox {tuple(bbox)} is not minlon, minlat, maxlon, maxlat")
    if maxx - minx < 1e-9:
        minx, maxx = minx - PAD, maxx + PAD
    if maxy - miny < 1e-9:
        miny, maxy = miny - PAD, maxy + PAD
    return minx, miny, maxx, maxy


def grid_for_size(bbox, cell_m: float) -> Grid:
    """Cells of at most `cell_m` metres a side; ValueError if that makes too many."""
    bbox = _widened(bbox)
    proj = Projection.for_bbox(bbox)
    minx, miny, maxx, maxy = bbox
    width, height = (maxx - minx) * proj.kx, (maxy - miny) * proj.ky
    nx, ny = max(1, math.ceil(width / cell_m)), max(1, math.ceil(height / cell_m))
    if max(nx, ny) > MAX_SIDE:
        raise ValueError(f"{cell_m:g} m cells over this view make a {nx} x {ny} grid; "
                         f"at most {MAX_SIDE} cells a side: use larger cells or a smaller view")
    return Grid(bbox, nx, ny)


def as_rows(values: np.ndarray) -> list:
    """An (ny, nx) south-to-north array as north-to-south lists, NaN as None."""
    arr = np.asarray(values, dtype=float)[::-1]
    bad = ~np.isfinite(arr)
    if not bad.any():
        return arr.tolist()
    return np.where(bad, None, arr).tolist()


def normalized(values: np.ndarray, scale: str = "max") -> np.ndarray:
    """0..1 values: divided by the maximum ("max", for densities) or stretched
    from minimum to maximum ("range", for surfaces that are not zero-based)."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return arr.copy()
    lo = 0.0 if scale == "max" else float(finite.min())
    span = float(finite.max()) - lo
    if span <= 0:
        return np.where(np.isfinite(arr), 0.0, np.nan)
    return np.clip((arr - lo) / span, 0.0, 1.0)


def grid_result(grid: Grid, values: np.ndarray, scale: str = "max", **raw: np.ndarray) -> dict:
    """The JSON form of a grid: normalized "values" plus raw same-shaped arrays,
    rows north to south, NaN as None."""
    out = {"bbox": list(grid.bbox), "nx": grid.nx, "ny": grid.ny,
           "values": as_rows(normalized(values, scale))}
    for name, arr in raw.items():
        if np.shape(arr) != grid.shape:
            raise ValueError(f"{name}: shape {np.shape(arr)} is not the grid's {grid.shape}")
        out[name] = as_rows(arr)
    return out
