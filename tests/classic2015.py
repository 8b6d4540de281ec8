"""A port of the 2015 heat map, for the tests: the 2015 server's logic as it
was written, a plain loop over the points and the cells (lists and
``math.exp``), sharing nothing with citystack.

The 2015 server drew the ``analysis`` grid in the client's pixel window: square
cells of ``cell_size`` pixels, ``w // cell_size`` by ``h // cell_size`` of them,
centred in the ``w`` x ``h`` window, rows north to south. Every point was put
in the cell it falls in; then it added ``2 exp(-d^2 / (2 c^2))`` (d the distance
in cells, c = 6) to every cell up to ``spread = 12`` cells away along x and
along y, and finally remapped the grid from its minimum to its maximum.
"""

from __future__ import annotations

import math

C = 6.0  # the Gaussian's standard deviation, in cells
SPREAD = 12  # cells either way where the loop stops


def point_distance(x1, y1, x2, y2):
    return ((x1 - x2) ** 2.0 + (y1 - y2) ** 2.0) ** 0.5


def heatmap(points, lat1, lat2, lng1, lng2, w, h, cell_size):
    """The 2015 ``analysis`` answer for `points` ((lat, lng) pairs) in the view
    (the bounds in any order): a list of cells ``{x, y, width, height, value}``,
    row by row, the northern row first, values 0..1."""
    south, north = min(lat1, lat2), max(lat1, lat2)
    west, east = min(lng1, lng2), max(lng1, lng2)
    num_w, num_h = w // cell_size, h // cell_size
    left = (w - num_w * cell_size) / 2.0
    top = (h - num_h * cell_size) / 2.0
    grid = [[0.0] * num_w for _ in range(num_h)]
    for lat, lng in points:
        px = (lng - west) / (east - west) * w  # pixels from the window's left edge
        py = (north - lat) / (north - south) * h  # pixels from its top edge
        pos_x = int(round((px - left - cell_size / 2.0) / cell_size))  # the nearest cell centre
        pos_y = int(round((py - top - cell_size / 2.0) / cell_size))
        for j in range(max(0, pos_y - SPREAD), min(num_h, pos_y + SPREAD + 1)):
            for i in range(max(0, pos_x - SPREAD), min(num_w, pos_x + SPREAD + 1)):
                grid[j][i] += 2 * math.exp(-point_distance(i, j, pos_x, pos_y) ** 2 / (2 * C ** 2))
    low = min(min(row) for row in grid)
    high = max(max(row) for row in grid)
    span = (high - low) or 1.0
    cells = []
    for j in range(num_h):
        for i in range(num_w):
            cells.append({"x": left + i * cell_size, "y": top + j * cell_size,
                          "width": cell_size - 1, "height": cell_size - 1,
                          "value": (grid[j][i] - low) / span})
    return cells
