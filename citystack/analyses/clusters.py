"""Clusters: DBSCAN or k-means over the point positions, in metres.

Both methods run on positions projected to metres around the view's centre
(:mod:`.grid`), so DBSCAN's eps is a distance a user can reason about and
k-means does not stretch longitude against latitude.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from sklearn.cluster import DBSCAN, KMeans

from .grid import Projection
from .registry import Param, analysis


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
    progress(f"clustering {lon.size} points with {params['method']}", 0.1)
    labels = cluster_labels(lon, lat, data.bbox, params["method"], params["eps"],
                            params["min_points"], params["k"])
    progress("outlining clusters", 0.8)
    out = describe(lon, lat, labels)
    out.update(kind="clusters", method=params["method"], input=data.info())
    return out


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
