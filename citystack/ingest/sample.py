"""A synthetic city for trying citystack with nothing to download.

Centred on Shenzhen's Futian district (22.539 N, 114.062 E), where the 2015
course's data lived. Everything is drawn from one seeded generator, so a
seed always gives the same city:

- ``listings``: rentals clustered around neighbourhood centres, with a price
  that falls with distance from the civic centre, varies by room type and
  carries log-normal noise (so interpolation has a real surface to find);
- ``checkins`` and ``checkins_places``: users who keep going back to a
  handful of favourite places near home, so pairs of places share visitors.
"""

from __future__ import annotations

import csv
import os
import tempfile

import numpy as np

from .load import load_file
from .presets import Mapping

CENTRE = (114.062, 22.539)  # lon, lat
CIVIC_CENTRE = (114.0579, 22.5431)
DISTRICTS = {  # subdistricts of Futian, roughly where they are
    "Shatou": (114.030, 22.530), "Xiangmihu": (114.030, 22.550), "Lianhua": (114.055, 22.560),
    "Huafu": (114.075, 22.545), "Nanyuan": (114.080, 22.530), "Yuanling": (114.085, 22.555),
    "Futian": (114.060, 22.525), "Meilin": (114.050, 22.570), "Huaqiangbei": (114.088, 22.545),
    "Fubao": (114.070, 22.515),
}
ROOMS = {"Entire home/apt": 1.0, "Private room": 0.75, "Shared room": 0.55}
ADJECTIVES = ("Bright", "Cosy", "Quiet", "Modern", "Spacious", "Sunny", "Stylish", "Compact", "Central")
CATEGORIES = {  # category -> (share of places, typical hours of visits)
    "Food": (0.25, (12, 19)), "Cafe": (0.10, (9, 15)), "Shop": (0.15, (14, 20)),
    "Office": (0.15, (9, 10)), "Nightlife": (0.08, (21, 23)), "Park": (0.07, (7, 17)),
    "Transit": (0.10, (8, 18)), "Gym": (0.05, (7, 19)), "Hotel": (0.05, (22, 8)),
}
M_PER_DEG = 111_320.0


def generate(folder: str, seed: int = 2015, listings: int = 20_000, places: int = 2_000,
             users: int = 1_000, checkins: int = 50_000) -> dict[str, str]:
    """Write listings.csv and checkins.csv into `folder`; return their paths."""
    rng = np.random.default_rng(seed)
    paths = {"listings": os.path.join(folder, "listings.csv"), "checkins": os.path.join(folder, "checkins.csv")}
    _write(paths["listings"], *_listings(rng, listings))
    _write(paths["checkins"], *_checkins(rng, places, users, checkins))
    return paths


def create(db: str, seed: int = 2015, progress=lambda m, f: None) -> list:
    """Generate the sample city and load it into `db`, replacing layers of its names
    (``init`` asks before it comes to that)."""
    with tempfile.TemporaryDirectory() as folder:
        progress("generating the sample city", 0.0)
        paths = generate(folder, seed)
        progress("loading listings", 0.3)
        reports = [load_file(db, paths["listings"], "listings", Mapping(price="price"), replace=True)]
        progress("loading check-ins", 0.6)
        reports.append(load_file(db, paths["checkins"], "checkins",
                                 Mapping(user="user", place="place", time="time", name="place_name",
                                         category="category"), replace=True))
    progress("done", 1.0)
    return reports


def _scatter(rng, n, spread_m):
    """Points around the district centres (a Gaussian blob each)."""
    names = list(DISTRICTS)
    which = rng.integers(0, len(names), n)
    centres = np.array([DISTRICTS[k] for k in names])[which]
    lat = centres[:, 1] + rng.normal(0, spread_m / M_PER_DEG, n)
    lon = centres[:, 0] + rng.normal(0, spread_m / (M_PER_DEG * np.cos(np.radians(CENTRE[1]))), n)
    return lon, lat, np.array(names)[which]


def _distance_m(lon, lat, to):
    dx = (lon - to[0]) * M_PER_DEG * np.cos(np.radians(CENTRE[1]))
    dy = (lat - to[1]) * M_PER_DEG
    return np.hypot(dx, dy)


def _listings(rng, n):
    lon, lat, district = _scatter(rng, n, 900)
    rooms = np.array(list(ROOMS))[rng.choice(len(ROOMS), n, p=[0.6, 0.32, 0.08])]
    factor = np.array([ROOMS[r] for r in rooms])
    # Price: dearer near the civic centre and towards the east, plus noise.
    trend = 1200 * np.exp(-_distance_m(lon, lat, CIVIC_CENTRE) / 2500) + 3000 * (lon - 114.03)
    price = np.round(np.maximum(200 + trend, 80) * factor * rng.lognormal(0, 0.12, n))
    adjective = np.array(ADJECTIVES)[rng.integers(0, len(ADJECTIVES), n)]
    size = rng.integers(1, 5, n)
    header = ["id", "name", "latitude", "longitude", "price", "room_type", "district", "bedrooms"]
    rows = zip(np.arange(1, n + 1), [f"{a} {s}-room flat in {d}" for a, s, d in zip(adjective, size, district)],
               np.round(lat, 6), np.round(lon, 6), price.astype(int), rooms, district, size)
    return header, rows


def _checkins(rng, n_places, n_users, n_checkins):
    plon, plat, pdistrict = _scatter(rng, n_places, 700)
    cats = list(CATEGORIES)
    share = np.array([CATEGORIES[c][0] for c in cats])
    pcat = rng.choice(len(cats), n_places, p=share / share.sum())
    popularity = rng.pareto(1.5, n_places) + 1
    # Each user keeps going back to favourites near home.
    ulon, ulat, _ = _scatter(rng, n_users, 900)
    per_user = rng.multinomial(n_checkins, np.full(n_users, 1 / n_users))
    rows = []
    start = np.datetime64("2015-03-02T00:00")  # a Monday
    visited = np.zeros(n_places, bool)
    for u in range(n_users):
        d = np.hypot((plon - ulon[u]) * 103_000, (plat - ulat[u]) * M_PER_DEG)
        weight = popularity * np.exp(-d / 1200)
        favourites = rng.choice(n_places, size=min(25, n_places), replace=False, p=weight / weight.sum())
        fav_weight = popularity[favourites] / popularity[favourites].sum()
        visits = rng.choice(favourites, size=per_user[u], p=fav_weight)
        visited[visits] = True
        if u == n_users - 1:  # every place has been found by someone, if only once
            visits = np.concatenate([visits, np.flatnonzero(~visited)])
        for p in visits:
            lo, hi = CATEGORIES[cats[pcat[p]]][1]
            hour = (lo + rng.integers(0, (hi - lo) % 24 + 1)) % 24
            when = start + np.timedelta64(int(rng.integers(0, 56)), "D") + np.timedelta64(int(hour) * 60 + int(rng.integers(0, 60)), "m")
            rows.append((f"u{u + 1:04d}", f"p{p + 1:04d}", f"{cats[pcat[p]]} {pdistrict[p]} #{p + 1}",
                         cats[pcat[p]], round(float(plat[p]), 6), round(float(plon[p]), 6), str(when)))
    return ["user", "place", "place_name", "category", "latitude", "longitude", "time"], rows


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
