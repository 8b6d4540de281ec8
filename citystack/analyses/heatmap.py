"""Heatmap: Gaussian kernel density of the points on a grid.

Exact summation, not binning: every point adds its own normalized Gaussian
``w / (2 pi h^2) * exp(-(dx^2 + dy^2) / (2 h^2))`` to every cell centre near
it. Doing that cell by cell is N x cells exponentials; two facts make it
fast instead:

* The kernel is separable, ``K = Kx(dx) * Ky(dy)``, so the density of a set
  of points on a block of cells is one matrix product ``Ky^T @ (w * Kx)``
  (BLAS), with one small kernel row per point and axis.
* Along an axis the cell centres are evenly spaced, so a point's kernel row
  ``exp(-((k - e) s)^2 / 2)`` is a fixed Gaussian in ``k`` times the
  geometric sequence ``exp(k e s^2)``: two exponentials per point and axis,
  then multiplications (:func:`_rows`).

Points are grouped into tiles of cells and each tile touches only the cells
within ``cutoff`` bandwidths of it (9 by default: the kernel there is
exp(-40.5), 2.6e-18 of its peak, far below the rounding error of any sum
that includes a nearby point). ``cutoff=None`` sums every point over every
cell: the same numbers, much slower on large grids.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .grid import grid_for_cells, grid_for_size, grid_result
from .registry import BadParam, Param, analysis

CUTOFF = 9.0  # bandwidths
GEOMETRIC_SPAN = 24.0  # bandwidths a kernel row may span before its factors leave float range
_CHUNK = 1 << 22  # kernel entries per block of points (two blocks of 32 MB)


@analysis(
    name="heatmap",
    title="Heatmap",
    description="Gaussian kernel density of the points in view (points per square metre, "
                "or weight per square metre with a weight field), summed exactly on a grid.",
    params=[
        Param("bandwidth", "float", 300.0, 10, 20000, help="kernel standard deviation in metres"),
        Param("cells", "int", 100, 4, 400, help="cells along the longer side of the view"),
        Param("cell_size", "float", None, 1, 20000, help="cell side in metres; overrides cells"),
        Param("weight", "field", None, help="numeric field to weight the points by"),
    ],
)
def heatmap(data, params, progress):
    try:
        grid = (grid_for_size(data.bbox, params["cell_size"]) if params.get("cell_size")
                else grid_for_cells(data.bbox, params["cells"]))
    except ValueError as exc:
        raise BadParam("cell_size", str(exc)) from None
    weight = params.get("weight")
    cols = data.columns("lon", "lat", *([weight] if weight else []))
    x, y = grid.project(cols["lon"], cols["lat"])
    dens = density(x, y, cols[weight] if weight else None, grid.x, grid.y,
                   params["bandwidth"], progress)
    return {"kind": "grid", "grid": grid_result(grid, dens, "max", density=dens),
            "bandwidth": params["bandwidth"], "cell_m": list(grid.cell_m), "weight": weight,
            "units": "weight per m²" if weight else "points per m²", "input": data.info()}


def density(x_m, y_m, weights, gx_m, gy_m, bandwidth_m, progress=None, cutoff=CUTOFF):
    """Kernel density at the cell centres: an (ny, nx) array, row 0 at ``gy_m[0]``.

    `gx_m` and `gy_m` are evenly spaced, increasing cell-centre coordinates
    in metres; points (and weights) with NaN are skipped; the kernel
    integrates to 1, so the result is (weight) per square metre.
    """
    h = float(bandwidth_m)
    if not h > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth_m!r}")
    x = np.asarray(x_m, dtype=float).ravel()
    y = np.asarray(y_m, dtype=float).ravel()
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    gx0, sx, nx = _axis(gx_m, "gx_m")
    gy0, sy, ny = _axis(gy_m, "gy_m")
    cx, cy = (x - gx0) / sx, (y - gy0) / sy  # positions in cell units, cell k at k
    rx = nx if cutoff is None else min(nx, math.ceil(cutoff * h / sx))
    ry = ny if cutoff is None else min(ny, math.ceil(cutoff * h / sy))
    keep = np.isfinite(cx) & np.isfinite(cy)
    if w is not None:
        keep &= np.isfinite(w)
    if cutoff is not None:  # points whose reach misses the grid entirely
        keep &= (cx > -0.5 - rx) & (cx < nx - 0.5 + rx) & (cy > -0.5 - ry) & (cy < ny - 0.5 + ry)
    if not keep.all():
        cx, cy, w = cx[keep], cy[keep], (None if w is None else w[keep])
    out = np.zeros((ny, nx))
    if cx.size == 0:
        return out

    tile = _tile_size(cx.size, nx, ny, rx, ry, sx / h, sy / h)
    tiles_x = -(-nx // tile)
    bx = np.clip(np.floor(cx + 0.5), 0, nx - 1).astype(np.int64) // tile
    by = np.clip(np.floor(cy + 0.5), 0, ny - 1).astype(np.int64) // tile
    key = by * tiles_x + bx
    order = np.argsort(key, kind="stable")
    cx, cy, key = cx[order], cy[order], key[order]
    if w is not None:
        w = w[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], key.size]

    ticker = _Ticker(progress, cx.size)
    for start, end in zip(starts.tolist(), ends.tolist()):
        tx, ty = divmod(int(key[start]), tiles_x)[::-1]
        i0, i1 = max(0, tx * tile - rx), min(nx, (tx + 1) * tile + rx)
        j0, j1 = max(0, ty * tile - ry), min(ny, (ty + 1) * tile + ry)
        step = max(256, _CHUNK // (i1 - i0 + j1 - j0))
        for a in range(start, end, step):
            b = min(end, a + step)
            kx, fx = _rows(cx[a:b], i0, i1 - i0, sx / h)
            ky, fy = _rows(cy[a:b], j0, j1 - j0, sy / h)
            if w is not None:
                kx *= w[None, a:b]
            block = ky @ kx.T
            block *= fy[:, None]
            block *= fx[None, :]
            out[j0:j1, i0:i1] += block
            ticker(b - a)
    out *= 1.0 / (2.0 * math.pi * h * h)
    return out


def _rows(c: np.ndarray, i0: int, n: int, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernel rows ``exp(-((i0 + k - c_p) s)^2 / 2)`` for k < n, as an (n, len(c))
    matrix (row k for cell i0 + k; points are contiguous, so every step below
    is one long vector operation) and a length-n factor to multiply in afterwards.

    With q = k - (n-1)/2 and e = c - (i0 + (n-1)/2), the exponent splits as
    ``-(e s)^2/2 + q e s^2 - (q s)^2/2``: the row is exp of the first two
    terms, a geometric sequence in k, built by doubling; the last term is
    the column factor. While the row spans at most GEOMETRIC_SPAN bandwidths
    every factor of a row that reaches the kernel's bulk stays within
    exp(+-510); rows far from the window (all below exp(-50)) and wider
    windows use exp directly.
    """
    q = np.arange(n) - (n - 1) / 2.0
    span = (n - 1) * s
    if span > GEOMETRIC_SPAN:
        d = (i0 + np.arange(n))[:, None] - c[None, :]
        d *= s
        d *= d
        d *= -0.5
        return np.exp(d, out=d), np.ones(n)
    es = (c - (i0 + (n - 1) / 2.0)) * s
    bound = span / 2 + 10.0  # beyond it a row is below exp(-50) everywhere
    far = np.abs(es) > bound
    if far.any():
        es_far = es[far]
        es = np.clip(es, -bound, bound)
    rows = np.empty((n, c.size))
    rows[0] = np.exp(es * (-0.5 * es + q[0] * s))
    if n > 1:
        ratio = np.exp(es * s)
        size = 1
        while size < n:
            m = min(size, n - size)
            np.multiply(rows[:m], ratio[None, :], out=rows[size:size + m])
            size += m
            if size < n:
                ratio *= ratio
    if far.any():  # the exponent below is at most (q s)^2 / 2: no overflow
        rows[:, far] = np.exp(es_far[None, :] * (-0.5 * es_far[None, :] + (q * s)[:, None]))
    return rows, np.exp(-0.5 * (q * s) ** 2)


def _axis(g, name: str) -> tuple[float, float, int]:
    """First centre, spacing and count of evenly spaced increasing centres."""
    g = np.asarray(g, dtype=float).ravel()
    if g.size == 0:
        raise ValueError(f"{name} is empty")
    if g.size == 1:
        return float(g[0]), 1.0, 1  # any spacing will do for one cell
    step = (g[-1] - g[0]) / (g.size - 1)
    if not step > 0 or np.abs(np.diff(g) - step).max() > 1e-6 * step:
        raise ValueError(f"{name} must be evenly spaced and increasing")
    return float(g[0]), float(step), int(g.size)


def _tile_size(n: int, nx: int, ny: int, rx: int, ry: int, sx: float, sy: float) -> int:
    """Tile side (cells) minimizing a rough time model: a fixed cost per tile,
    kernel rows per point, and the matrix product per point."""
    best, best_cost = max(nx, ny), math.inf
    for t in sorted({*range(1, 33), *(int(v) for v in np.geomspace(33, max(nx, ny, 33), 24))}):
        wx, wy = min(nx, t + 2 * rx), min(ny, t + 2 * ry)
        tiles = min(-(-nx // t) * -(-ny // t), n)
        row_cost = sum(w * (1.0 if (w - 1) * s <= GEOMETRIC_SPAN else 4.0)
                       for w, s in ((wx, sx), (wy, sy)))
        cost = tiles * 40e-6 + n * (row_cost * 1e-9 + wx * wy * 5e-11)
        if cost < best_cost * 0.999:
            best, best_cost = t, cost
        elif cost <= best_cost * 1.001:
            best = max(best, t)  # as good: fewer tiles
    return best


class _Ticker:
    """Calls progress at the start and then about every 0.1 s (each call may cancel)."""

    def __init__(self, progress, total: int):
        self.progress, self.total, self.done = progress, max(total, 1), 0
        self.last = time.monotonic()
        if progress is not None:
            progress("computing density", 0.0)

    def __call__(self, n: int) -> None:
        self.done += n
        if self.progress is not None and time.monotonic() - self.last > 0.1:
            self.last = time.monotonic()
            self.progress("computing density", self.done / self.total)
