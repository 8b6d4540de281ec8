"""The 2015 client's analysis grid: square cells of `cell_size` pixels,
centred in a `w` x `h` pixel window of the view, rows north to south.

The 2015 server answered ``analysis`` as a list of cells ``{x, y, width,
height, value}`` in pixels, ``floor(w / cell_size)`` by ``floor(h /
cell_size)`` of them, 1 pixel apart, with values normalized to 0..1; the
values here come from the heatmap and interpolate analyses.
"""

from __future__ import annotations

import math

import numpy as np

from .grid import Projection, normalized


class PixelGrid:
    def __init__(self, bbox, w: int, h: int, cell_size: int):
        self.bbox = bbox
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
