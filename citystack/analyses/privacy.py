"""Privacy thresholds: aggregates of too few points, or too few people, are withheld.

A bin, hexagon, area or heat-map cell with fewer than ``min_count`` points,
or (check-in layers, which say who was where) fewer than ``min_users``
distinct users, is not sent: its value is left out and the result's summary
counts it in ``withheld``. The thresholds in force are the larger of the
request's and the server's (CITYSTACK_MIN_COUNT, CITYSTACK_MIN_USERS): a
request can raise them, never lower them. Check-in layers have a default
of CITYSTACK_CHECKIN_MIN_USERS distinct users (3) that requests cannot lower
either; an operator sets it to 0 to turn it off.
"""

from __future__ import annotations

import numpy as np

from ..checks import BadParam
from ..stores.base import LayerInfo

USER_FIELD = "user"


def user_field(info: LayerInfo) -> str | None:
    """The field naming who made a point (check-in layers), or None."""
    if info.kind == "checkins" and USER_FIELD in info.field_names:
        return USER_FIELD
    return None


def thresholds(info: LayerInfo, settings, min_count: int | None, min_users: int | None) -> tuple[int, int]:
    """(min_count, min_users) in force for a request on `info`."""
    count = max(int(min_count or 0), int(getattr(settings, "min_count", 0) or 0))
    if user_field(info) is None:
        if min_users:
            raise BadParam("min_users", f"layer {info.name!r} has no users (min_users applies to check-in layers)")
        return count, 0
    users = max(int(min_users or 0), int(getattr(settings, "min_users", 0) or 0),
                int(getattr(settings, "checkin_min_users", 0) or 0))
    return count, users


def apply(values: dict, info: LayerInfo, settings) -> dict:
    """An analysis's parsed parameters with the thresholds in force (for those that take them)."""
    if "min_count" not in values and "min_users" not in values:
        return values
    count, users = thresholds(info, settings, values.get("min_count"), values.get("min_users"))
    out = dict(values)
    if "min_count" in out:
        out["min_count"] = count
    if "min_users" in out:
        out["min_users"] = users
    return out


def withheld(count: np.ndarray, users: np.ndarray | None, min_count: int, min_users: int) -> np.ndarray:
    """True where an aggregate is below a threshold."""
    out = np.asarray(count) < min_count
    if users is not None and min_users:
        out = out | (np.asarray(users) < min_users)
    return out


def cell_counts(i: np.ndarray, j: np.ndarray, nx: int, ny: int, users=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Points (and distinct users) per cell of an (ny, nx) grid, row 0 south; points with
    i or j outside the grid are not counted."""
    inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
    flat = (j[inside] * nx + i[inside]).astype(np.int64)
    counts = np.bincount(flat, minlength=nx * ny).reshape(ny, nx)
    if users is None:
        return counts, None
    from ..stores.areas import distinct_per_group

    return counts, distinct_per_group(flat, nx * ny, np.asarray(users, dtype=object)[inside]).reshape(ny, nx)


def withhold_grid(data, grid, values: np.ndarray, min_count: int, min_users: int) -> int:
    """Set to NaN the cells of an (ny, nx) south-to-north grid over `grid.bbox` that hold
    fewer than `min_count` of the input's points (or fewer than `min_users` users); return
    how many. A point is in the cell its position falls in (the last row and column
    include the bbox's north and east edges). Sampled input counts only its sample."""
    if not min_count and not min_users:
        return 0
    user = user_field(data.layer) if min_users else None
    cols = data.columns("lon", "lat", *([user] if user else []))
    minx, miny, maxx, maxy = grid.bbox
    i = np.minimum(np.floor((np.asarray(cols["lon"], float) - minx) / ((maxx - minx) / grid.nx)), grid.nx - 1)
    j = np.minimum(np.floor((np.asarray(cols["lat"], float) - miny) / ((maxy - miny) / grid.ny)), grid.ny - 1)
    counts, users = cell_counts(i.astype(np.int64), j.astype(np.int64), grid.nx, grid.ny,
                                cols[user] if user else None)
    mask = withheld(counts, users, min_count, min_users)
    values[mask] = np.nan
    return int(mask.sum())


def pixel_withheld(grid, lon, lat, min_count: int) -> np.ndarray:
    """The 2015 heat map's cells (a PixelGrid, list order: north row first) holding fewer
    than `min_count` points: a bool array over that list. A point is in the cell whose
    centre is nearest (the cell it falls in); points in the margins are in none."""
    if not min_count or grid.empty:
        return np.zeros(grid.nx * grid.ny, dtype=bool)
    u, v = grid.cell_units(lon, lat)
    i, j = np.floor(u + 0.5), np.floor(v + 0.5)
    ok = np.isfinite(i) & np.isfinite(j)
    counts, _ = cell_counts(i[ok].astype(np.int64), j[ok].astype(np.int64), grid.nx, grid.ny)
    return (counts[::-1] < min_count).reshape(-1)
