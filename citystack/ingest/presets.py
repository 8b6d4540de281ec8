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


AIRBNB = Mapping(
    lat="latitude", lon="longitude", id="id", name="name", price="price",
    keep=("name", "host_id", "host_name", "neighbourhood_group", "neighbourhood", "room_type",
          "property_type", "accommodates", "bedrooms", "beds", "price", "minimum_nights",
          "number_of_reviews", "last_review", "reviews_per_month", "review_scores_rating",
          "calculated_host_listings_count", "availability_365"),
    # Inside Airbnb's detailed listings.csv names the 2019 summary columns differently.
    rename={"neighbourhood_cleansed": "neighbourhood",
            "neighbourhood_group_cleansed": "neighbourhood_group"},
)

FOURSQUARE = Mapping(
    lat="lat", lon="lon", user="label", place="poi", day="day", hour="hour", category="category",
    missing={"price": -999, "rating": -999},
)

PRESETS = {"airbnb": AIRBNB, "foursquare": FOURSQUARE}
