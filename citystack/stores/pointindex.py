"""A layer's points held in memory behind a grid index, for small bbox views.

The map asks for the features of small windows, over and over. DuckDB answers
each in about 0.8 ms, nearly all of it fixed cost (parsing, planning, setting
up the scan), where the work itself is a few thousand comparisons. This index
does that work in numpy: the points are bucketed on a grid over the layer's
extent, a window reads the buckets it overlaps (one contiguous slice per grid
row) and keeps the points inside. Rows come back in the layer's stored order,
the order SQL returns them in, so pages agree whichever path answered.

Columns are read from the database the first time a request needs them, and
kept for the life of the database file they came from.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

POINTS_PER_CELL = 8  # grid size: about this many points per cell, evenly spread
MAX_CELLS_PER_SIDE = 2048
MAX_CANDIDATES = 65_536  # beyond this a window is large, and SQL's streaming LIMIT wins


class PointIndex:
    def __init__(self, lon: np.ndarray, lat: np.ndarray, read_column: Callable[[str], np.ndarray]):
        """`lon`, `lat`: every point, in stored order; `read_column(name)`: a whole column in that order."""
        self.lon, self.lat = np.ascontiguousarray(lon, float), np.ascontiguousarray(lat, float)
        self._read = read_column
        self._columns: dict[str, np.ndarray] = {"lon": self.lon, "lat": self.lat}
        self._lock = threading.Lock()
        n = len(self.lon)
        self.x0, self.y0 = float(self.lon.min()), float(self.lat.min())
        self.side = int(np.clip(np.sqrt(n / POINTS_PER_CELL), 1, MAX_CELLS_PER_SIDE))
        self.dx = (float(self.lon.max()) - self.x0) / self.side or 1.0
        self.dy = (float(self.lat.max()) - self.y0) / self.side or 1.0
        cells = self._cell_y(self.lat) * self.side + self._cell_x(self.lon)
        self.order = np.argsort(cells, kind="stable").astype(np.int64)
        # starts[c]..starts[c + 1] are the positions in `order` of cell c's points.
        self.starts = np.searchsorted(cells[self.order], np.arange(self.side * self.side + 1))
        self.sorted_lon, self.sorted_lat = self.lon[self.order], self.lat[self.order]

    def _cell_x(self, x):
        return np.clip(np.floor((np.asarray(x) - self.x0) / self.dx), 0, self.side - 1).astype(np.int64)

    def _cell_y(self, y):
        return np.clip(np.floor((np.asarray(y) - self.y0) / self.dy), 0, self.side - 1).astype(np.int64)

    def rows(self, bbox) -> np.ndarray | None:
        """Positions (stored order, ascending) of the points inside `bbox`, edges included;
        None when the window is too large for this to beat a scan."""
        minx, miny, maxx, maxy = bbox
        # floor((v - x0) / dx) never decreases as v grows, so every point inside
        # the window lies in a cell between the cells of its corners.
        cx0, cx1 = int(self._cell_x(minx)), int(self._cell_x(maxx))
        cy = np.arange(int(self._cell_y(miny)), int(self._cell_y(maxy)) + 1) * self.side
        lo, hi = self.starts[cy + cx0], self.starts[cy + cx1 + 1]
        if int((hi - lo).sum()) > MAX_CANDIDATES:
            return None
        spans = [slice(a, b) for a, b in zip(lo.tolist(), hi.tolist()) if b > a]
        if not spans:
            return np.empty(0, np.int64)
        x = np.concatenate([self.sorted_lon[s] for s in spans])
        y = np.concatenate([self.sorted_lat[s] for s in spans])
        inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
        found = np.concatenate([self.order[s] for s in spans])[inside]
        found.sort()
        return found

    def column(self, name: str) -> np.ndarray:
        col = self._columns.get(name)
        if col is None:
            with self._lock:
                col = self._columns.get(name)
                if col is None:
                    col = self._columns[name] = self._read(name)
        return col

    def take(self, rows: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """Those rows of the named columns, as a query returning them would: a column
        is masked (has NULLs) only when one of the rows taken is NULL."""
        out = {}
        for name in names:
            values = self.column(name)[rows]
            if isinstance(values, np.ma.MaskedArray) and not np.ma.getmaskarray(values).any():
                values = values.data
            out[name] = values
        return out
