"""A layer's default name field and colour field, chosen from its fields at load.

The name field names a feature in tooltips and labels: the one given
(``citystack load --name``), else the first field called like a name
(``name``, ``title``, ``common_name`` ... in that order of preference, in
any case), else the first text field with many distinct short values.

The colour field is what the page colours by at first: something that
means something on a map. Never an identifier (``FieldInfo.id``, or named
``id`` / ``*_id``) nor a coordinate (``lat``, ``end_lng``, ``x`` ...);
a price-like number first (price, fare, cost, amount, value), then a
category of 2 to 12 values, then any other number that varies.
"""

from __future__ import annotations

import re
from typing import Sequence

from .base import BOOL, NUMERIC, TEXT, FieldInfo, StoreError

NAME_NAMES = ("name", "title", "common_name", "spc_common", "description", "address",
              "station_name", "start_station_name")
PRICE_WORDS = {"price", "fare", "cost", "amount", "value"}
COORD_WORDS = {"lat", "lon", "lng", "long", "latitude", "longitude", "x", "y", "easting", "northing",
               "geom", "geometry", "coordinates"}
ID_WORDS = {"id", "uuid", "guid", "key"}
CATEGORY_RANGE = (2, 12)
MANY = 10  # a name field has at least this many distinct values
SHORT = 80  # characters: a name is about this long at most


def words(name: str) -> list[str]:
    """The words of a field name: ``start_station_id`` -> start, station, id; ``TreeID`` -> tree, id."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name))
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def is_id(f: FieldInfo) -> bool:
    return f.id or bool(ID_WORDS & set(words(f.name)[-1:])) or words(f.name)[:1] == ["id"]


def is_coordinate(f: FieldInfo) -> bool:
    return bool(COORD_WORDS & set(words(f.name)))


def choose_name(fields: Sequence[FieldInfo], given: str | None = None) -> str | None:
    """The public name of the field that names a feature (`given`: a field's name or column)."""
    if given:
        for match in (lambda f: f.name == given, lambda f: f.column == given,
                      lambda f: f.name.lower() == given.lower()):
            found = [f for f in fields if match(f)]
            if found:
                return found[0].name
        raise StoreError(f"--name {given}: the layer has no such field "
                         f"(fields: {', '.join(f.name for f in fields)})")
    texts = [f for f in fields if f.type == TEXT and not is_id(f)]
    by_name = {"_".join(words(f.name)): f for f in reversed(texts)}
    for name in NAME_NAMES:
        if name in by_name:
            return by_name[name].name
    for f in texts:
        top = [str(v) for v, _ in (f.top or [])]
        distinct = f.distinct if f.distinct is not None else len(top)
        if not f.category and distinct >= MANY and top and max(map(len, top)) <= SHORT \
                and "\n" not in "".join(top):
            return f.name
    return None


def choose_colour(fields: Sequence[FieldInfo], name_field: str | None = None) -> str | None:
    """The public name of the field to colour by at first (not the name field), or None."""
    usable = [f for f in fields if not is_id(f) and not is_coordinate(f) and f.name != name_field]
    numbers = [f for f in usable if f.type == NUMERIC and f.min is not None and f.max is not None
               and f.min < f.max]
    for f in numbers:
        if PRICE_WORDS & set(words(f.name)):
            return f.name
    lo, hi = CATEGORY_RANGE
    for f in usable:
        if f.type in (TEXT, BOOL) and lo <= (_categories(f) or 0) <= hi:
            return f.name
    return numbers[0].name if numbers else None


def _categories(f: FieldInfo) -> int | None:
    """How many values a category field has (None: not a category, or not known)."""
    if f.category:
        return f.distinct if f.distinct is not None else len(f.top or []) + (f.others or 0)
    top = f.top or []
    if f.distinct is None and 0 < len(top) < MANY:  # databases before FieldInfo.distinct: top held 10
        return len(top)
    return None
