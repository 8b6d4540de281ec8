"""Clusters: DBSCAN or k-means over the point positions, in metres.

Both methods run on positions projected to metres around the view's centre
(:mod:`.grid`), so DBSCAN's eps is a distance a user can reason about and
k-means does not stretch longitude against latitude. DBSCAN's memory grows
with the square of the points; above the analysis memory bound it clusters
a sample and says so (:func:`dbscan_plan`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree
from sklearn.cluster import DBSCAN, KMeans

from .grid import Projection
from .registry import BadParam, Param, analysis


@analysis(
    name="clusters",
    title="Clusters",
    description="Groups of nearby points: DBSCAN (dense groups, the rest is noise) "
                "or k-means (k groups), with the convex hull of each group.",
    params=[
        Param("method", "choice", "dbscan", choices=("dbscan", "kmeans"), help="clustering method"),
        Param("eps", "float", 200.0, 1, 10000, help="DBSCAN: neighbourhood radius in metres"),
        Param("min_points", "int", 10, 1, 1000, help="DBSCAN: points within eps that make a core point"),
        Param("k", "int", 8, 1, 100, help="k-means: number of clusters"),
    ],
)
def clusters(data, params, progress):
    lon, lat = np.asarray(data.lon, dtype=float), np.asarray(data.lat, dtype=float)
    min_points, extra = params["min_points"], {"notes": [], "sampled": False}
    max_bytes = getattr(data, "max_bytes", None)
    if params["method"] == "dbscan" and max_bytes is not None and lon.size:
        progress(f"estimating DBSCAN's neighbourhoods of {lon.size} points", 0.05)
        plan = dbscan_plan(project(lon, lat, data.bbox), params["eps"], min_points, max_bytes)
        extra["dbscan"] = plan.describe()
        if plan.keep is not None:
            lon, lat, min_points = lon[plan.keep], lat[plan.keep], plan.min_points
            extra.update(sampled=True, notes=[plan.note()])
    progress(f"clustering {lon.size} points with {params['method']}", 0.1)
    labels = cluster_labels(lon, lat, data.bbox, params["method"], params["eps"], min_points, params["k"])
    progress("outlining clusters", 0.8)
    out = describe(lon, lat, labels)
    out.update(kind="clusters", method=params["method"], input=data.info(), **extra)
    return out


class DBSCANPlan:
    """What DBSCAN over some points would hold, and the sample that keeps it
    within a memory bound.

    scikit-learn's DBSCAN first lists every point's neighbours within eps
    and keeps all the lists: about BYTES_PER_NEIGHBOUR bytes per (point,
    neighbour) pair, which grows with the square of the points at a given
    density. The number of pairs is estimated from a KD-tree count around a
    random sample of the points; when the bytes would pass the bound, a
    random fraction f of the points is clustered instead (the pairs fall by
    f squared), with min_points scaled by f, so that a core point still
    means the same density.
    """

    def __init__(self, n: int, eps: float, min_points: int, max_bytes: int, pairs: float,
                 keep: np.ndarray | None, used_min_points: int):
        self.n, self.eps, self.asked_min_points, self.max_bytes = n, eps, min_points, max_bytes
        self.pairs, self.keep, self.min_points = pairs, keep, used_min_points

    @property
    def bytes(self) -> float:
        return self.pairs * BYTES_PER_NEIGHBOUR

    def describe(self) -> dict:
        return {"estimated_bytes": int(self.bytes), "max_bytes": int(self.max_bytes),
                "points": self.n if self.keep is None else int(self.keep.size), "of": self.n,
                "min_points": int(self.min_points)}

    def note(self) -> str:
        return (f"DBSCAN over all {self.n} points with eps={self.eps:g} m would hold about "
                f"{self.bytes / 1e6:,.0f} MB of neighbour lists, over the {self.max_bytes / 1e6:,.0f} MB an "
                f"analysis may use (CITYSTACK_ANALYSIS_MAX_BYTES): clustered a random {self.keep.size} of "
                f"them with min_points {self.min_points} (scaled from {self.asked_min_points}); "
                f"a smaller eps or view clusters every point")


BYTES_PER_NEIGHBOUR = 16  # measured on the NYC listings: 12-15 bytes of peak memory per pair
ESTIMATE_POINTS = 1000  # points whose neighbours are counted for the estimate
ESTIMATE_TREE = 20_000  # at most this many points in the tree counted against
MIN_SAMPLE = 500  # fewer points than this is no longer a clustering of the view: refuse


def dbscan_plan(xy: np.ndarray, eps: float, min_points: int, max_bytes: int, seed: int = 0) -> DBSCANPlan:
    """Estimate DBSCAN's neighbour pairs over the (n, 2) metre positions and
    choose a sample when they would pass `max_bytes` (see :class:`DBSCANPlan`);
    BadParam when even a sample of MIN_SAMPLE points would."""
    n = len(xy)
    pairs = neighbour_pairs(xy, eps, seed)
    if pairs * BYTES_PER_NEIGHBOUR <= max_bytes:
        return DBSCANPlan(n, eps, min_points, max_bytes, pairs, None, min_points)
    fraction = 0.9 * math.sqrt(max_bytes / (pairs * BYTES_PER_NEIGHBOUR))
    m = int(n * fraction)
    if m < min(MIN_SAMPLE, n):
        raise BadParam("eps", f"DBSCAN over these {n} points with eps={eps:g} m would hold about "
                              f"{pairs * BYTES_PER_NEIGHBOUR / 1e6:,.0f} MB of neighbour lists, and a sample small "
                              f"enough for the {max_bytes / 1e6:,.0f} MB an analysis may use "
                              "(CITYSTACK_ANALYSIS_MAX_BYTES) would be too small: use a smaller eps or view")
    keep = np.sort(np.random.default_rng(seed).choice(n, m, replace=False))
    scaled = max(1, int(round(min_points * m / n)))
    return DBSCANPlan(n, eps, min_points, max_bytes, pairs, keep, scaled)


def neighbour_pairs(xy: np.ndarray, eps: float, seed: int = 0) -> float:
    """Estimated number of (point, neighbour within eps) pairs, each point its
    own neighbour: the mean count around ESTIMATE_POINTS random points, in a
    KD-tree of at most ESTIMATE_TREE of them (scaled up), times n. Bounded
    work however large eps is."""
    n = len(xy)
    if n == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    tree_pts = xy if n <= ESTIMATE_TREE else xy[rng.choice(n, ESTIMATE_TREE, replace=False)]
    tree = cKDTree(tree_pts, balanced_tree=False, compact_nodes=False)
    probes = xy[rng.choice(n, min(n, ESTIMATE_POINTS), replace=False)]
    counts = tree.query_ball_point(probes, float(eps), return_length=True)
    return float(n * np.mean(counts) * n / len(tree_pts))


def project(lon, lat, bbox=None) -> np.ndarray:
    """(n, 2) positions in metres around the bbox centre (or the points' own)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if bbox is None:
        bbox = (lon.min(), lat.min(), lon.max(), lat.max()) if lon.size else (0, 0, 0, 0)
    x, y = Projection.for_bbox(bbox).forward(lon, lat)
    return np.column_stack([x, y])


def cluster_labels(lon, lat, bbox, method="dbscan", eps=200.0, min_points=10, k=8) -> np.ndarray:
    """One label per point (-1 = DBSCAN noise)."""
    xy = project(lon, lat, bbox)
    if xy.shape[0] == 0:
        return np.zeros(0, dtype=int)
    if method == "dbscan":
        return DBSCAN(eps=float(eps), min_samples=int(min_points)).fit_predict(xy)
    if method == "kmeans":
        k = min(int(k), xy.shape[0])  # KMeans refuses more clusters than points
        return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(xy)
    raise ValueError(f"unknown clustering method {method!r}")


def hull(lon: np.ndarray, lat: np.ndarray) -> list[list[float]]:
    """The convex hull as a closed ring of [lon, lat]; the distinct points
    themselves when there are fewer than 3 or they are all on one line."""
    pts = np.unique(np.column_stack([lon, lat]), axis=0)
    if len(pts) >= 3:
        try:
            ring = pts[ConvexHull(pts).vertices]
            return np.vstack([ring, ring[:1]]).tolist()
        except QhullError:  # collinear: the two ends of the line
            pass
    if len(pts) > 2:
        axis = pts - pts.mean(axis=0)
        along = axis @ np.linalg.svd(axis, full_matrices=False)[2][0]
        pts = pts[[along.argmin(), along.argmax()]]
    return pts.tolist()


def describe(lon, lat, labels) -> dict:
    """Points with labels, one entry (size, hull) per cluster, and the noise count."""
    labels = np.asarray(labels, dtype=int)
    order = np.argsort(labels, kind="stable")  # one pass, however many clusters
    values, starts, sizes = np.unique(labels[order], return_index=True, return_counts=True)
    found = []
    for label, start, size in zip(values.tolist(), starts.tolist(), sizes.tolist()):
        if label >= 0:
            member = order[start:start + size]
            found.append({"label": label, "size": size, "hull": hull(lon[member], lat[member])})
    return {"points": {"lon": lon, "lat": lat, "label": labels},
            "clusters": found, "noise": int((labels < 0).sum())}
