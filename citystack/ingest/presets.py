"""Column mappings for well-known sources.

A :class:`Mapping` names which columns hold what. Presets are mappings for
sources people load again and again; flags on ``citystack load`` fill in or
override any part of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

LAT_NAMES = ("lat", "latitude", "y", "lat_deg", "decimallatitude", "point_y")
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "lon_deg", "decimallongitude", "point_x")


@dataclass(frozen=True)
class Mapping:
    lat: str | None = None
    lon: str | None = None
    id: str | None = None
    name: str | None = None
    price: str | None = None
    # Check-ins: a user at a place, at a time or on a day and hour.
    user: str | None = None
    place: str | None = None
    time: str | None = None
    day: str | None = None
    hour: str | None = None
    category: str | None = None
    keep: tuple[str, ...] | None = None  # properties to keep, when present (None: all)
    rename: dict = field(default_factory=dict)  # source column -> field name
    missing: dict = field(default_factory=dict)  # column -> value that means "no value"

    @property
    def checkins(self) -> bool:
        return bool(self.user and self.place)

    def merged(self, **flags) -> "Mapping":
        return replace(self, **{k: v for k, v in flags.items() if v})


# Inside Airbnb, both formats: the 2019 summary (AB_NYC_2019.csv, 16 columns) and the detailed
# listings.csv (about 75). Every column is kept, under its own name; the preset only names the
# key ones (the detailed file's neighbourhood is `neighbourhood_cleansed`, its host `host_name`).
AIRBNB = Mapping(lat="latitude", lon="longitude", id="id", name="name", price="price")

FOURSQUARE = Mapping(
    lat="lat", lon="lon", user="label", place="poi", day="day", hour="hour", category="category",
    missing={"price": -999, "rating": -999},
)

PRESETS = {"airbnb": AIRBNB, "foursquare": FOURSQUARE}

# Trips (bike share, taxis): a start and an end position. The layer's points are the starts;
# the end position stays as two fields. (start latitude, start longitude, end latitude, end longitude)
TRIP_PAIRS = (
    ("start_lat", "start_lng", "end_lat", "end_lng"),
    ("start_lat", "start_lon", "end_lat", "end_lon"),
    ("start_latitude", "start_longitude", "end_latitude", "end_longitude"),
    ("start_station_latitude", "start_station_longitude", "end_station_latitude", "end_station_longitude"),
    ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"),
    ("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"),
    ("from_lat", "from_lon", "to_lat", "to_lon"),
    ("origin_lat", "origin_lon", "destination_lat", "destination_lon"),
)


def trip_columns(public) -> tuple[str, str, str | None, str | None] | None:
    """(start lat, start lon, end lat, end lon) columns of a trips file, found by their
    names in the file (`public`: column -> name, or a list of names; any case); the end
    pair None when the file has only the start. None: not a trips file."""
    if not isinstance(public, dict):
        public = {c: c for c in public}
    lower = {}
    for col, name in reversed(list(public.items())):
        lower[str(name).lower()] = col
    for lat, lon, end_lat, end_lon in TRIP_PAIRS:
        if lat in lower and lon in lower:
            ends = (lower[end_lat], lower[end_lon]) if end_lat in lower and end_lon in lower else (None, None)
            return (lower[lat], lower[lon], *ends)
    return None
