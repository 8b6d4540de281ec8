"""The 2015 heat map, as the course wrote it: the reference for the speed ratio.

Each point is snapped to its grid cell, then a Python double loop adds a
Gaussian ``2 * exp(-d^2 / (2 c^2))`` (d in cells) to every cell within
`spread` cells of it, and the grid is finally remapped to 0..1. The 2015
route used c = 6 cells and spread = 12 (the classic route reproduces that:
analyses/pixels.py, tested against tests/classic2015.py); here c is the
bandwidth in cells and spread three of it, so that this code and the heatmap
analysis draw the same map for the speed ratio. It is plain Python
on purpose, lists and ``math.exp``, as it was: only the benchmark uses it.
"""

from __future__ import annotations

import math


def point_distance(x1, y1, x2, y2):
    return ((x1 - x2) ** 2.0 + (y1 - y2) ** 2.0) ** 0.5


def heatmap_2015(x_m, y_m, gx_m, gy_m, bandwidth_m, spread=None):
    """Heat at the cells (centres gx_m, gy_m, evenly spaced, in metres) as a list
    of rows, row 0 at gy_m[0], normalized to 0..1 as the 2015 server did."""
    num_w, num_h = len(gx_m), len(gy_m)
    cell_w = (gx_m[-1] - gx_m[0]) / (num_w - 1)
    cell_h = (gy_m[-1] - gy_m[0]) / (num_h - 1)
    c = bandwidth_m / cell_w
    spread = int(math.ceil(3 * c)) if spread is None else spread
    grid = [[0.0] * num_w for _ in range(num_h)]
    for x, y in zip(list(x_m), list(y_m)):
        pos_x = int(round((x - gx_m[0]) / cell_w))
        pos_y = int(round((y - gy_m[0]) / cell_h))
        for j in range(max(0, pos_y - spread), min(num_h, pos_y + spread + 1)):
            for i in range(max(0, pos_x - spread), min(num_w, pos_x + spread + 1)):
                grid[j][i] += 2 * math.exp(-point_distance(i, j, pos_x, pos_y) ** 2 / (2 * c ** 2))
    low = min(min(row) for row in grid)
    high = max(max(row) for row in grid)
    span = (high - low) or 1.0
    return [[(v - low) / span for v in row] for row in grid]
