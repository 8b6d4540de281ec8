"""Presets and defaults on real and made-up files: every column of both Inside Airbnb
formats kept, the name and colour fields chosen by name and kind, trips loaded at
their starts, and load reports that say where bad rows are (by physical line, by
GeoJSON feature) and how many rows repeat."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from conftest import AIRBNB, SHARED, citystack, needs_shared
from citystack.stores import View, open_store

DIVVY = SHARED / "divvy_chicago_2021-01.csv"

# Inside Airbnb's detailed listings.csv (2023 layout): 75 columns.
DETAILED = [
    "id", "listing_url", "scrape_id", "last_scraped", "source", "name", "description", "neighborhood_overview",
    "picture_url", "host_id", "host_url", "host_name", "host_since", "host_location", "host_about",
    "host_response_time", "host_response_rate", "host_acceptance_rate", "host_is_superhost", "host_thumbnail_url",
    "host_picture_url", "host_neighbourhood", "host_listings_count", "host_total_listings_count",
    "host_verifications", "host_has_profile_pic", "host_identity_verified", "neighbourhood",
    "neighbourhood_cleansed", "neighbourhood_group_cleansed", "latitude", "longitude", "property_type",
    "room_type", "accommodates", "bathrooms", "bathrooms_text", "bedrooms", "beds", "amenities", "price",
    "minimum_nights", "maximum_nights", "minimum_minimum_nights", "maximum_minimum_nights",
    "minimum_maximum_nights", "maximum_maximum_nights", "minimum_nights_avg_ntm", "maximum_nights_avg_ntm",
    "calendar_updated", "has_availability", "availability_30", "availability_60", "availability_90",
    "availability_365", "calendar_last_scraped", "number_of_reviews", "number_of_reviews_ltm",
    "number_of_reviews_l30d", "first_review", "last_review", "review_scores_rating", "review_scores_accuracy",
    "review_scores_cleanliness", "review_scores_checkin", "review_scores_communication",
    "review_scores_location", "review_scores_value", "license", "instant_bookable",
    "calculated_host_listings_count", "calculated_host_listings_count_entire_homes",
    "calculated_host_listings_count_private_rooms", "calculated_host_listings_count_shared_rooms",
    "reviews_per_month",
]


def detailed_listings(path: Path, n: int = 40, seed: int = 9) -> Path:
    rnd = random.Random(seed)
    rooms = ["Entire home/apt", "Private room", "Shared room", "Hotel room"]
    hoods = [("Williamsburg", "Brooklyn"), ("Harlem", "Manhattan"), ("Astoria", "Queens")]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(DETAILED)
        for i in range(n):
            hood, group = rnd.choice(hoods)
            row = {name: "" for name in DETAILED}
            row.update({
                "id": 1000 + i, "listing_url": f"https://www.airbnb.com/rooms/{1000 + i}",
                "scrape_id": 20230905014303, "last_scraped": "2023-09-05", "source": "city scrape",
                "name": f"Room {i} in {hood}",
                "description": f"A bright room, \"quiet\", near the park.\nLine two of listing {i}.",
                "host_id": 5000 + i % 7, "host_name": rnd.choice(["Ana", "Ben", "Chen"]),
                "host_since": "2015-03-02", "host_response_rate": f"{rnd.randint(50, 100)}%",
                "host_acceptance_rate": "N/A" if i % 9 == 0 else f"{rnd.randint(50, 100)}%",
                "host_is_superhost": rnd.choice("tf"), "host_verifications": "['email', 'phone']",
                "host_has_profile_pic": "t", "host_identity_verified": rnd.choice("tf"),
                "neighbourhood": "New York, United States" if i % 2 else "",
                "neighbourhood_cleansed": hood, "neighbourhood_group_cleansed": group,
                "latitude": f"{40.6 + rnd.random() / 5:.5f}", "longitude": f"{-74.0 + rnd.random() / 5:.5f}",
                "property_type": "Private room in rental unit", "room_type": rnd.choice(rooms),
                "accommodates": rnd.randint(1, 6), "bathrooms_text": rnd.choice(["1 bath", "1.5 shared baths"]),
                "bedrooms": rnd.randint(1, 3), "beds": rnd.randint(1, 4),
                "amenities": json.dumps(["Wifi", "Kitchen", "Long term stays allowed"]),
                "price": f"${rnd.randint(40, 1500):,}.00", "minimum_nights": 30, "maximum_nights": 1125,
                "has_availability": "t", "availability_365": rnd.randint(0, 365),
                "calendar_last_scraped": "2023-09-05", "number_of_reviews": rnd.randint(0, 200),
                "first_review": "2019-01-04", "last_review": "2023-08-01",
                "review_scores_rating": f"{rnd.uniform(3, 5):.2f}", "instant_bookable": rnd.choice("tf"),
                "calculated_host_listings_count": 1, "reviews_per_month": f"{rnd.uniform(0, 3):.2f}",
            })
            out.writerow([row[name] for name in DETAILED])
    return path


def street_trees(path: Path, n: int = 60, seed: int = 3) -> Path:
    """A street-tree census like New York's: ids, a diameter, categories and a common name."""
    rnd = random.Random(seed)
    species = [("Quercus palustris", "pin oak"), ("Platanus x acerifolia", "London planetree"),
               ("Gleditsia triacanthos", "honeylocust"), ("Tilia cordata", "littleleaf linden")]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["tree_id", "block_id", "created_at", "Trunk_Diameter", "curb_loc", "status", "health",
                      "spc_latin", "Common_Name", "address", "zipcode", "Latitude", "Longitude"])
        for i in range(n):
            latin, common = species[i % len(species)]
            out.writerow([180683 + i * 7, 348711 + i % 13, "08/27/2015", rnd.randint(2, 40),
                          rnd.choice(["OnCurb", "OffsetFromCurb"]), "Alive", rnd.choice(["Good", "Fair", "Poor"]),
                          latin, common, f"{100 + i} {rnd.choice(['BEDFORD AVE', 'KENT AVE', 'MAIN ST'])}",
                          11211 + i % 3, f"{40.70 + rnd.random() / 20:.6f}", f"{-73.96 + rnd.random() / 20:.6f}"])
    return path


def header(path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A database of made-up files: the detailed listings and street trees."""
    folder = tmp_path_factory.mktemp("presets")
    db = folder / "made.duckdb"
    citystack("load", detailed_listings(folder / "listings.csv"), "--layer", "detailed", "--preset", "airbnb",
              "--db", db)
    citystack("load", street_trees(folder / "trees.csv"), "--layer", "trees", "--db", db)
    citystack("load", folder / "trees.csv", "--layer", "trees_by_address", "--name", "address", "--db", db)
    store = open_store(str(db))
    yield folder, store
    store.close()


@pytest.fixture(scope="module")
def divvy(tmp_path_factory):
    if not DIVVY.exists():
        pytest.skip(f"{DIVVY} is absent")
    db = tmp_path_factory.mktemp("divvy") / "divvy.duckdb"
    proc = citystack("load", DIVVY, "--layer", "divvy", "--db", db)
    store = open_store(str(db))
    yield proc, store
    store.close()


def divvy_rows() -> list[dict]:
    with open(DIVVY, newline="") as fh:
        return list(csv.DictReader(fh))


# -- presets ------------------------------------------------------------------------

def test_airbnb_preset_keeps_every_column_of_the_detailed_format(made):
    folder, store = made
    info = store.layer("detailed")
    kept = [c for c in header(folder / "listings.csv") if c not in ("id", "latitude", "longitude")]
    assert len(kept) == 72
    assert info.field_names == kept  # every column, under its own name (no renames)
    assert "neighbourhood" in kept and "neighbourhood_cleansed" in kept
    assert info.count == 40
    assert info.name_field == "name"


@needs_shared(AIRBNB)
def test_airbnb_preset_keeps_every_column_of_the_2019_summary(duckdb_db):
    store = open_store(str(duckdb_db))
    info = store.layer("nyc")
    assert info.field_names == [c for c in header(AIRBNB) if c not in ("id", "latitude", "longitude")]
    assert info.name_field == "name"
    assert info.colour_field == "price"


# -- name and colour fields ---------------------------------------------------------------

def test_street_trees_are_named_by_their_common_name_and_never_coloured_by_an_id(made):
    _, store = made
    info = store.layer("trees")
    assert info.name_field.lower() == "common_name"
    assert info.colour_field is not None
    assert info.colour_field.lower() not in ("tree_id", "block_id", "latitude", "longitude", "zipcode")
    assert info.field(info.colour_field).type in ("number", "text", "bool")
    # --name names it explicitly.
    assert store.layer("trees_by_address").name_field == "address"


def test_a_name_that_is_not_a_field_is_refused(tmp_path):
    path = street_trees(tmp_path / "t.csv", 5)
    proc = citystack("load", path, "--layer", "t", "--name", "nickname", "--db", tmp_path / "t.duckdb", check=False)
    assert proc.returncode == 2 and "nickname" in proc.stderr and "Traceback" not in proc.stderr


def test_divvy_is_named_by_station_and_coloured_by_a_category(divvy):
    _, store = divvy
    info = store.layer("divvy")
    assert info.colour_field in ("rideable_type", "member_casual")
    assert info.name_field == "start_station_name"


# -- trips --------------------------------------------------------------------------------

def test_divvy_loads_as_points_at_the_start_with_the_end_kept(divvy):
    proc, store = divvy
    info = store.layer("divvy")
    rows = divvy_rows()
    assert info.kind == "points" and info.count == len(rows) == 96_834
    assert "trips: points at the start (start_lat, start_lng)" in proc.stdout
    assert info.ends == ["end_lng", "end_lat"]
    assert info.field("end_lat").type == info.field("end_lng").type == "number"
    assert "start_lat" not in info.field_names and "start_lng" not in info.field_names
    # Trips with a start but no end are kept, with no end.
    no_end = sum(1 for r in rows if not r["end_lat"] or not r["end_lng"])
    assert no_end == 103 and f"{no_end} trips have no end" in proc.stdout
    # Starts in a window: the store's count equals a count over the file.
    box = (-87.65, 41.87, -87.62, 41.90)
    expected = sum(1 for r in rows if box[0] <= float(r["start_lng"]) <= box[2]
                   and box[1] <= float(r["start_lat"]) <= box[3])
    assert expected > 1000
    assert store.count("divvy", View(bbox=box)) == expected
    # And the ends are the file's: the end of the trips in the window, summed.
    cols = store.features("divvy", View(bbox=box), ["end_lat"], limit=expected + 1)
    ends = [float(r["end_lat"]) for r in rows if r["end_lat"] and box[0] <= float(r["start_lng"]) <= box[2]
            and box[1] <= float(r["start_lat"]) <= box[3]]
    got = [v for v in cols["properties"]["end_lat"].tolist() if v == v and v is not None]
    assert sorted(got) == pytest.approx(sorted(ends))


# -- honest reports -------------------------------------------------------------------------

def test_a_bad_row_after_a_multi_line_record_is_reported_at_its_own_first_line(tmp_path):
    path = tmp_path / "ml.csv"
    path.write_text('id,name,latitude,longitude\n'
                    '1,"two\nlines",40.1,-73.9\n'        # lines 2-3
                    '2,"three\n""quoted""\nlines",40.2,-73.8\n'  # lines 4-6
                    '3,"bad\none",north,-73.7\n'         # lines 7-8: the bad record
                    '4,d,40.3,-73.6\n')
    proc = citystack("load", path, "--layer", "ml", "--db", tmp_path / "ml.duckdb", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "1 of 4 rows" in proc.stderr and "line 7;" in proc.stderr


def feature(i, geometry, fid=None):
    out = {"type": "Feature", "geometry": geometry, "properties": {"name": f"f{i}"}}
    if fid is not None:
        out["id"] = fid
    return out


def test_a_polygon_among_points_is_named_and_skipped_with_skip_invalid(tmp_path):
    features = [feature(i, {"type": "Point", "coordinates": [114.0 + i / 100, 22.5]}, f"p{i}") for i in range(20)]
    features[12] = feature(12, {"type": "Polygon", "coordinates": [[[114, 22], [114.1, 22], [114.1, 22.1],
                                                                    [114, 22]]]}, "abc")
    features[15] = feature(15, {"type": "LineString", "coordinates": [[114, 22], [114.1, 22]]}, "def")
    path = tmp_path / "mixed.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    db = tmp_path / "g.duckdb"
    proc = citystack("load", path, "--layer", "g", "--db", db, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "feature 12 (id 'abc') is a Polygon" in proc.stderr
    assert "feature 15 (id 'def') is a LineString" in proc.stderr
    assert not db.exists() or "g" not in [i.name for i in open_store(str(db)).layers()]
    proc = citystack("load", path, "--layer", "g", "--db", db, "--skip-invalid")
    assert "2 of 20 features are not Points" in proc.stdout and "skipped" in proc.stdout
    store = open_store(str(db))
    assert store.count("g", View()) == 18
    names = store.features("g", View(), ["name"], 100)["properties"]["name"].tolist()
    assert sorted(names) == sorted(f"f{i}" for i in range(20) if i not in (12, 15))


def test_exact_duplicate_rows_are_counted_and_kept(tmp_path):
    path = tmp_path / "dups.csv"
    path.write_text("name,lat,lon,kind\na,1,2,x\nb,1,2,x\na,1,2,x\na,1,2,x\nb,1,2,y\n")
    db = tmp_path / "d.duckdb"
    proc = citystack("load", path, "--layer", "d", "--db", db)
    assert "2 rows repeat an earlier row exactly (kept)" in proc.stdout
    assert open_store(str(db)).layer("d").count == 5
    path.write_text("name,lat,lon\na,1,2\nb,1,2\n")
    proc = citystack("load", path, "--layer", "d", "--db", db)
    assert "repeat" not in proc.stdout


def test_layers_shows_long_text_on_one_line(tmp_path):
    path = tmp_path / "long.csv"
    long = "A sunny loft with a view, " * 10 + "\nand a second line"
    path.write_text(f'name,lat,lon\n"{long}",1,2\n"{long}",1,3\nshort,1,4\n')
    db = tmp_path / "l.duckdb"
    citystack("load", path, "--layer", "l", "--db", db)
    out = citystack("layers", "--db", db).stdout
    lines = out.splitlines()
    assert not any(line.startswith("and a second line") for line in lines)
    (row,) = [line for line in lines if line.strip().startswith("name")]
    assert "A sunny loft with a view" in row and "…" in row
    assert "second line" not in row and len(row) < 160
