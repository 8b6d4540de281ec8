"""A deterministic synthetic city the size of New York, and view windows holding N points."""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXTENT = (-74.26, 40.49, -73.70, 40.92)  # New York City, lon/lat
MIDTOWN = (-73.985, 40.758)
M_PER_DEG = 111_320.0
ROOMS = ("Entire home/apt", "Private room", "Shared room")
ADJECTIVES = ("Bright", "Cosy", "Quiet", "Modern", "Spacious", "Sunny", "Stylish", "Compact", "Central")


def points(n: int, seed: int = 2015) -> tuple[np.ndarray, np.ndarray]:
    """lon, lat inside EXTENT: 80% in 120 Gaussian clusters of 200 m .. 2.5 km (centres
    gathered around Midtown, Pareto weights), the rest spread evenly."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = EXTENT
    k = 120
    cx = np.clip(rng.normal(MIDTOWN[0], 0.09, k), x0, x1)
    cy = np.clip(rng.normal(MIDTOWN[1], 0.08, k), y0, y1)
    weight = rng.pareto(1.2, k) + 1
    sigma_m = rng.uniform(200, 2500, k)
    n_clustered = int(n * 0.8)
    which = rng.choice(k, n_clustered, p=weight / weight.sum())
    lat_c = cy[which] + rng.normal(0, 1, n_clustered) * sigma_m[which] / M_PER_DEG
    lon_c = cx[which] + rng.normal(0, 1, n_clustered) * sigma_m[which] / (M_PER_DEG * np.cos(np.radians(40.7)))
    lon = np.concatenate([lon_c, rng.uniform(x0, x1, n - n_clustered)])
    lat = np.concatenate([lat_c, rng.uniform(y0, y1, n - n_clustered)])
    out = (lon < x0) | (lon > x1) | (lat < y0) | (lat > y1)  # cluster tails beyond the city: spread evenly
    lon[out], lat[out] = rng.uniform(x0, x1, out.sum()), rng.uniform(y0, y1, out.sum())
    order = rng.permutation(n)
    return lon[order], lat[order]


def to_metres(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular metres about the extent's south-west corner."""
    c = np.cos(np.radians((EXTENT[1] + EXTENT[3]) / 2))
    return (lon - EXTENT[0]) * M_PER_DEG * c, (lat - EXTENT[1]) * M_PER_DEG


def write_csv(path: Path, n: int, seed: int = 2015) -> Path:
    """id,name,latitude,longitude,price,room_type; written once, reused while it exists."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed + 1)
    lon, lat = points(n, seed)
    room = rng.choice(len(ROOMS), n, p=[0.55, 0.4, 0.05])
    x, y = to_metres(lon, lat)
    mx, my = to_metres(*MIDTOWN)
    dist_km = np.hypot(x - mx, y - my) / 1000
    price = np.round((60 + 240 * np.exp(-dist_km / 6)) * np.array([1.0, 0.55, 0.35])[room]
                     * rng.lognormal(0, 0.3, n))
    adjective = rng.integers(0, len(ADJECTIVES), n)
    tmp = path.with_suffix(".part")
    with open(tmp, "w") as fh:
        fh.write("id,name,latitude,longitude,price,room_type\n")
        fh.writelines(f"{i + 1},{ADJECTIVES[a]} {ROOMS[r].split()[0].lower()} #{i + 1},{y:.6f},{x:.6f},{int(p)},{ROOMS[r]}\n"
                      for i, (a, r, y, x, p) in enumerate(zip(adjective.tolist(), room.tolist(), lat.tolist(),
                                                               lon.tolist(), price.tolist())))
    tmp.replace(path)
    return path


def windows(store, layer: str, target: int, k: int, seed: int = 7) -> list[dict]:
    """k square boxes (in metres) around random points of the layer, each sized so that it
    holds `target` points: the Chebyshev distance to the target-th neighbour. Each count
    is checked through the store."""
    from scipy.spatial import cKDTree

    from citystack.stores import View

    cols = store.columns(layer, View(), ["lon", "lat"])
    lon, lat = cols["lon"], cols["lat"]
    c = np.cos(np.radians(float(lat.mean())))
    tree = cKDTree(np.column_stack([lon * c, lat]))
    pick = np.random.default_rng(seed).choice(len(lon), k, replace=False)
    dist, _ = tree.query(np.column_stack([lon[pick] * c, lat[pick]]), k=target, p=np.inf)
    out = []
    for i, half in zip(pick, dist[:, -1] * (1 + 1e-9)):
        bbox = (float(lon[i] - half / c), float(lat[i] - half), float(lon[i] + half / c), float(lat[i] + half))
        out.append({"bbox": bbox, "count": store.count(layer, View(bbox=bbox)),
                    "side_m": float(2 * half * M_PER_DEG)})
    return out
