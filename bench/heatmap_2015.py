"""The 2015 heatmap, written plainly: the reference for the speed-ratio benchmark.

This is how the original project computed its density: a Python loop over the
points, each adding a Gaussian to the block of cells within `spread` cells of
it on either side. It is kept as it was (apart from the kernel being normalized the
same way as :func:`citystack.analyses.heatmap.density`) so that the benchmark
measures the speed of the new code against the old algorithm; it is not used
by the application.
"""

from __future__ import annotations

import math

import numpy as np


def heatmap_2015(x_m, y_m, gx_m, gy_m, bandwidth_m, spread=3):
    """Density at the cell centres (gx_m, gy_m evenly spaced, in metres) as an
    (ny, nx) array, row 0 at gy_m[0]; only cells within `spread` cells of a
    point's own cell get its kernel (the 2015 truncation)."""
    gx = np.asarray(gx_m, dtype=float)
    gy = np.asarray(gy_m, dtype=float)
    dx = gx[1] - gx[0] if gx.size > 1 else 1.0
    dy = gy[1] - gy[0] if gy.size > 1 else 1.0
    two_h2 = 2.0 * bandwidth_m * bandwidth_m
    norm = 1.0 / (math.pi * two_h2)
    out = np.zeros((gy.size, gx.size))
    for x, y in zip(np.asarray(x_m, dtype=float).tolist(), np.asarray(y_m, dtype=float).tolist()):
        ci = int(round((x - gx[0]) / dx))
        cj = int(round((y - gy[0]) / dy))
        i0, i1 = max(0, ci - spread), min(gx.size, ci + spread + 1)
        j0, j1 = max(0, cj - spread), min(gy.size, cj + spread + 1)
        if i0 >= i1 or j0 >= j1:
            continue
        d2 = (gx[None, i0:i1] - x) ** 2 + (gy[j0:j1, None] - y) ** 2
        out[j0:j1, i0:i1] += norm * np.exp(-d2 / two_h2)
    return out
