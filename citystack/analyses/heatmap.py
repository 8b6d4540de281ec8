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
within ``cutoff`` bandwidths of it, 7 by default: a term left out is below
exp(-24.5) = 2.3e-11 of a kernel's peak, so the map equals the full sum to
far better than 1e-9 of its maximum (measured: 2e-14 on 10,000 points); only
cells with no point within 7 bandwidths read 0 instead of a vanishing number. ``cutoff=None`` sums every
point at every cell, for any grid: the same map, but a matrix product over
all points and all cells (seconds for a million points on 200 x 200).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from .grid import grid_for_cells, grid_for_size, grid_result
from .registry import BadParam, Param, analysis

CUTOFF = 7.0  # bandwidths
GEOMETRIC_SPAN = 24.0  # bandwidths a kernel row may span before its factors leave float range


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
        Param("min_count", "int", 0, 0, help="withhold cells holding fewer points (privacy)"),
        Param("min_users", "int", 0, 0, help="withhold cells of fewer distinct users (check-in layers)"),
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
    from .privacy import withhold_grid  # cells below the thresholds: NaN, counted

    hidden = withhold_grid(data, grid, dens, params.get("min_count", 0), params.get("min_users", 0))
    return {"kind": "grid", "grid": grid_result(grid, dens, "max", density=dens), "withheld": hidden,
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
    keep = np.isfinite(cx) & np.isfinite(cy)
    if w is not None:
        keep &= np.isfinite(w)
    if cutoff is None:
        rx, ry = nx, ny
    else:  # drop points whose reach misses the grid entirely
        rx, ry = min(nx, math.ceil(cutoff * h / sx)), min(ny, math.ceil(cutoff * h / sy))
        keep &= (cx > -0.5 - rx) & (cx < nx - 0.5 + rx) & (cy > -0.5 - ry) & (cy < ny - 0.5 + ry)
    if not keep.all():
        cx, cy, w = cx[keep], cy[keep], (None if w is None else w[keep])
    if cx.size == 0:
        return np.zeros((ny, nx))
    plan = _Plan(cx.size, nx, ny, rx, ry, sx / h, sy / h, single=cutoff is None)
    out = plan.run(cx, cy, w, progress)
    out *= 1.0 / (2.0 * math.pi * h * h)
    return out


class _Plan:
    """Tiles and batches for one density computation.

    Tiles are `tx` x `ty` cells; a tile's window reaches `rx`, `ry` cells
    beyond it (0 when one tile spans the axis) and is never clipped, so all
    windows have one shape. Points sorted by tile are processed in batches:
    kernel rows for the whole batch at once, then one matrix product per
    tile (or part of a tile) in the batch. With large windows, batches run on
    a few threads (numpy and BLAS release the GIL), each product on one BLAS
    thread.
    """

    BATCH = 1 << 17  # kernel values per axis and batch (1 MB): stays in cache
    SIDES = None  # tile sides to choose from (tests pin one); None: 1..32 and larger

    def __init__(self, n, nx, ny, rx, ry, sx, sy, single=False):
        self.nx, self.ny, self.sx, self.sy = nx, ny, sx, sy
        sides = [max(nx, ny)] if single else self.SIDES or sorted(
            {*range(1, 33), *np.geomspace(33, max(nx, ny, 33), 16).astype(int).tolist()})
        best = None
        for t in sides:  # minimize a rough time model
            tx, ty = min(t, nx), min(t, ny)
            ntx, nty = -(-nx // tx), -(-ny // ty)
            rxe, rye = (0 if ntx == 1 else rx), (0 if nty == 1 else ry)
            wx, wy = tx + 2 * rxe, ty + 2 * rye
            rows = sum(k * (1.0 if (k - 1) * s <= GEOMETRIC_SPAN else 4.0)
                       for k, s in ((wx, sx), (wy, sy)))
            cost = n * (rows * 1e-9 + wx * wy * 5e-11) + min(ntx * nty, n) * (8e-6 + wx * wy * 1e-9)
            if best is None or cost < best[0]:
                best = (cost, tx, ty, ntx, nty, rxe, rye, wx, wy)
        _, self.tx, self.ty, self.ntx, self.nty, self.rx, self.ry, self.wx, self.wy = best

    def run(self, cx, cy, w, progress):
        # Sort the points by tile (a 16-bit key sorts by radix, much faster;
        # intp keys index fast).
        key = np.clip(cy + 0.5, 0, self.ny - 0.5).astype(np.intp) // self.ty * self.ntx
        key += np.clip(cx + 0.5, 0, self.nx - 0.5).astype(np.intp) // self.tx
        ntiles = self.ntx * self.nty
        order = np.argsort(key.astype(np.uint16) if ntiles <= 1 << 16 else key, kind="stable")
        key = key[order]
        # Each point's offset from its window's centre, in bandwidths.
        tiles = np.arange(ntiles)
        self.ex = (cx[order] - ((tiles % self.ntx) * self.tx - self.rx + (self.wx - 1) / 2.0)[key]) * self.sx
        self.ey = (cy[order] - ((tiles // self.ntx) * self.ty - self.ry + (self.wy - 1) / 2.0)[key]) * self.sy
        self.w = None if w is None else w[order]
        self.key = key
        self.far_x, self.far_y = _far(self.ex, self.wx, self.sx), _far(self.ey, self.wy, self.sy)
        self.factor = np.outer(_factor(self.wy, self.sy), _factor(self.wx, self.sx))

        per = max(64, self.BATCH // max(self.wx, self.wy))
        batches = [(a, min(a + per, key.size)) for a in range(0, key.size, per)]
        padded = np.zeros((self.nty * self.ty + 2 * self.ry, self.ntx * self.tx + 2 * self.rx))
        if progress is not None:
            progress("computing density", 0.0)
        # Threads pay off when the products are large; with small windows the
        # many short numpy calls mostly contend for the GIL.
        workers = min(4, os.cpu_count() or 1, len(batches)) if self.wx * self.wy >= 2000 else 1
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
        with _one_blas_thread():  # the threads here share the cores, not BLAS
            try:
                results = pool.map(self._batch, batches) if pool else map(self._batch, batches)
                last = time.monotonic()
                for done, blocks in enumerate(results, 1):
                    for t, block in blocks:
                        r, c = (t // self.ntx) * self.ty, (t % self.ntx) * self.tx
                        padded[r:r + self.wy, c:c + self.wx] += block
                    if progress is not None and time.monotonic() - last > 0.1:
                        last = time.monotonic()
                        progress("computing density", done / len(batches))  # may cancel
            finally:
                if pool:
                    pool.shutdown(wait=True, cancel_futures=True)
        return padded[self.ry:self.ry + self.ny, self.rx:self.rx + self.nx].copy()

    def _batch(self, span):
        """(tile, window block) for each tile among the points [a, b)."""
        a, b = span
        kx = _rows(self.ex[a:b], self.wx, self.sx, None if self.w is None else self.w[a:b], self.far_x)
        ky = _rows(self.ey[a:b], self.wy, self.sy, None, self.far_y)
        key = self.key[a:b]
        cuts = [0, *(np.flatnonzero(key[1:] != key[:-1]) + 1).tolist(), b - a]
        out = []
        for s, e in zip(cuts[:-1], cuts[1:]):
            block = ky[:, s:e] @ kx[:, s:e].T
            block *= self.factor
            out.append((int(key[s]), block))
        return out


def _rows(es: np.ndarray, n: int, s: float, w: np.ndarray | None, far: bool) -> np.ndarray:
    """Kernel values ``w_p exp(-((q_k s - es_p)^2 / 2)`` of points at offsets
    es (bandwidths from their window's centre) at the window's cells
    q_k = k - (n-1)/2, k < n, as an (n, len(es)) array divided by
    :func:`_factor` (points are the last axis: every step is one long vector
    operation).

    The exponent splits as ``-es^2/2 + q es s - (q s)^2/2``: without the last
    term (the factor), the values are a geometric sequence in k, built by
    doubling from two exponentials per point. While a window spans at most
    GEOMETRIC_SPAN bandwidths every number met stays within exp(+-510) for
    points that reach the kernel's bulk; points farther away (all values
    below exp(-50)) and wider windows use exp directly.
    """
    q = np.arange(n) - (n - 1) / 2.0
    if (n - 1) * s > GEOMETRIC_SPAN:
        d = (q * s)[:, None] - es[None, :]
        d *= d
        d *= -0.5
        np.exp(d, out=d)
        if w is not None:
            d *= w[None, :]
        return d
    far_idx = None
    if far:
        bound = (n - 1) * s / 2 + 10.0
        far_idx = np.flatnonzero(np.abs(es) > bound)
        es_far = es[far_idx][None, :]
        es = np.clip(es, -bound, bound)
    rows = np.empty((n, es.size))
    rows[0] = np.exp(es * (-0.5 * es + q[0] * s))
    if w is not None:  # the whole sequence scales with its first term
        rows[0] *= w
    if n > 1:
        ratio = np.exp(es * s)
        size = 1
        while size < n:
            m = min(size, n - size)
            np.multiply(rows[:m], ratio[None, :], out=rows[size:size + m])
            size += m
            if size < n:
                ratio *= ratio
    if far_idx is not None and far_idx.size:  # this exponent is at most (q s)^2 / 2: no overflow
        rows[:, far_idx] = np.exp(es_far * (-0.5 * es_far + (q * s)[:, None])) * (
            1.0 if w is None else w[far_idx][None, :])
    return rows


def _far(es: np.ndarray, n: int, s: float) -> bool:
    """Whether any point is too far from its window for the geometric sequence."""
    return bool((np.abs(es) > (n - 1) * s / 2 + 10.0).any())


def _factor(n: int, s: float) -> np.ndarray:
    """What :func:`_rows` leaves out: ``exp(-(q s)^2 / 2)``, q = k - (n-1)/2."""
    if (n - 1) * s > GEOMETRIC_SPAN:
        return np.ones(n)
    return np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2.0) * s) ** 2)


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


_blas = {"users": 0, "limit": None, "controller": None}
_blas_lock = threading.Lock()


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS on one thread while any density runs: its products are small and
    come from several threads at once, where BLAS's own threads only spin.
    Counted, so overlapping calls restore the setting once, at the end."""
    with _blas_lock:
        if _blas["users"] == 0:
            if _blas["controller"] is None:
                _blas["controller"] = ThreadpoolController()
            _blas["limit"] = _blas["controller"].limit(limits=1, user_api="blas")
        _blas["users"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas["users"] -= 1
            if _blas["users"] == 0:
                _blas["limit"].restore_original_limits()

