"""The 2015 client's analysis grid: square cells of `cell_size` pixels,
centred in a `w` x `h` pixel window of the view, rows north to south.

The 2015 server answered ``analysis`` as a list of cells ``{x, y, width,
height, value}`` in pixels, ``floor(w / cell_size)`` by ``floor(h /
cell_size)`` of them, 1 pixel apart, with values normalized to 0..1.

The heat map is the 2015 one (:func:`heat`): every point is snapped to the
cell it falls in and spreads a Gaussian of ``SIGMA`` cells over the cells up
to ``REACH`` cells away along each axis (a square, as the 2015 double loop
had it), and the sum is stretched from its minimum to its maximum. The
interpolated surface comes from the interpolate analysis.
"""

from __future__ import annotations

import math

import numpy as np

from .grid import Projection, normalized

SIGMA = 6.0  # cells: the 2015 Gaussian's standard deviation
REACH = 12  # cells either way along each axis: the 2015 `spread`, where the kernel is cut


class PixelGrid:
    def __init__(self, bbox, w: int, h: int, cell_size: int):
        self.bbox = tuple(float(v) for v in bbox)
        self.w, self.h = w, h
        self.nx, self.ny = int(w // cell_size), int(h // cell_size)
        self.cell = cell_size
        self.left = (w - self.nx * cell_size) / 2.0
        self.top = (h - self.ny * cell_size) / 2.0
        minx, miny, maxx, maxy = bbox
        # Cell centres in degrees (linear in pixels, as a city-sized map view is) ...
        self.lon = minx + (self.left + (np.arange(self.nx) + 0.5) * cell_size) / w * (maxx - minx)
        lat_north_first = maxy - (self.top + (np.arange(self.ny) + 0.5) * cell_size) / h * (maxy - miny)
        self.lat = lat_north_first[::-1]  # ... kept south to north while computing
        self.proj = Projection.for_bbox(bbox)
        self.x, _ = self.proj.forward(self.lon, self.proj.lat0)
        _, self.y = self.proj.forward(self.proj.lon0, self.lat)

    @property
    def empty(self) -> bool:
        """A view with no width or no height: its cells cover no ground."""
        minx, miny, maxx, maxy = self.bbox
        return not (maxx > minx and maxy > miny)

    def cell_units(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """Positions in cells: cell (column i, south-to-north row j) is centred at (i, j)."""
        minx, miny, maxx, maxy = self.bbox
        step_x = self.cell / self.w * (maxx - minx)
        step_y = self.cell / self.h * (maxy - miny)
        with np.errstate(divide="ignore", invalid="ignore"):
            return ((np.asarray(lon, dtype=float) - self.lon[0]) / step_x,
                    (np.asarray(lat, dtype=float) - self.lat[0]) / step_y)

    @property
    def cell_m(self) -> float:
        return float(np.mean(np.diff(self.x))) if self.nx > 1 else self.cell

    def mesh_m(self):
        return np.meshgrid(self.x, self.y)

    def cells(self, values: np.ndarray, scale: str = "max") -> list[dict]:
        """(ny, nx) south-to-north values as the 2015 list of cells, north row first."""
        norm = normalized(values, scale)[::-1]
        out = []
        size = self.cell - 1
        for j in range(self.ny):
            for i in range(self.nx):
                v = float(norm[j, i])
                out.append({"x": self.left + i * self.cell, "y": self.top + j * self.cell,
                            "width": size, "height": size, "value": None if math.isnan(v) else v})
        return out


def heat(grid: PixelGrid, lon, lat, sigma: float = SIGMA, reach: int = REACH) -> np.ndarray:
    """The 2015 heat of the points on the grid: an (ny, nx) array, row 0 south.

    The 2015 loop added ``exp(-d^2 / (2 sigma^2))`` (d in cells, from the
    cell a point falls in) to every cell within `reach` cells along each axis.
    That window is a square and the Gaussian is separable, so the same sums
    are the point counts per cell (with a `reach`-cell margin for points
    beyond the grid's edge) correlated with a (2 reach + 1) kernel along x,
    then along y: ``2 (2 reach + 1)`` array operations over the grid, whatever
    the number of points. The 2015 factor 2 is left out: the map is stretched
    from its minimum to its maximum afterwards.
    """
    nx, ny, r = grid.nx, grid.ny, int(reach)
    cx, cy = grid.cell_units(lon, lat)
    ix, iy = np.floor(cx + 0.5), np.floor(cy + 0.5)  # the cell a point falls in
    keep = np.isfinite(ix) & np.isfinite(iy)
    keep &= (ix >= -r) & (ix < nx + r) & (iy >= -r) & (iy < ny + r)  # others reach no cell
    width = nx + 2 * r
    flat = (iy[keep].astype(np.intp) + r) * width + (ix[keep].astype(np.intp) + r)
    counts = np.bincount(flat, minlength=(ny + 2 * r) * width).astype(float).reshape(ny + 2 * r, width)
    kernel = np.exp(-(np.arange(-r, r + 1) ** 2) / (2.0 * sigma * sigma))
    along_x = np.zeros((ny + 2 * r, nx))
    for d, k in enumerate(kernel):
        along_x += k * counts[:, d:d + nx]
    out = np.zeros((ny, nx))
    for d, k in enumerate(kernel):
        out += k * along_x[d:d + ny]
    return out
