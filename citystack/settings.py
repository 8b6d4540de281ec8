"""One place for configuration.

Every setting has a default, can be set from the environment as
``CITYSTACK_<NAME>`` and, for the CLI, from a flag. Nothing else in the
package reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

DEFAULT_DB = "data/citystack.duckdb"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 5000
    # Server processes; 0 (the default): one per core this process may run on, at most 8
    # (default_workers). Each holds its own memory index and DuckDB cache: docs/deploy.md.
    workers: int = 0
    # How a worker serves connections: "gevent" (the default: one greenlet per
    # connection, so open event streams cost a few kilobytes each) or "gthread"
    # (one thread per connection in use, CITYSTACK_THREADS of them; an open event
    # stream holds one for as long as it is open).
    server: str = "gevent"
    connections: int = 4000  # open connections per worker (event streams included)
    threads: int = 32  # gthread only
    header_timeout: float = 10.0  # seconds a new connection has to send its request's headers
    keepalive: float = 5.0  # seconds an idle kept-alive connection waits for its next request's headers
    # Where clients reach the app, e.g. https://maps.example.org/citystack: absolute
    # links (OpenAPI servers, next pages) start with it; empty: links are relative.
    # Links are never built from the request's Host header.
    base_url: str = ""
    # Longest request target (path and query string, bytes) and most request
    # header bytes the app reads; longer is a 414 / 431. A server in front (gunicorn's
    # limit_request_line, 4094 by default) must let at least this much through.
    max_url_length: int = 4000
    max_header_bytes: int = 16_384
    # The map page.
    tile_url: str = OSM_TILES
    tile_attribution: str = OSM_ATTRIBUTION
    # Features API.
    default_limit: int = 10_000
    max_limit: int = 50_000
    # format=arrow (the page's transport: ~25 bytes a point) may ask for this many at once.
    arrow_max_limit: int = 1_000_000
    bins_threshold: int = 20_000
    # Export (GET /api/layers/{layer}/export): most rows one export may hold (a view
    # with more is a 400 naming this limit, before anything is sent), rows per page
    # read from the store while streaming.
    export_max_rows: int = 1_000_000
    export_page_rows: int = 20_000
    # Density images (GET /api/layers/{layer}/density): most pixels in one image.
    density_max_pixels: int = 4_000_000
    # DuckDB layers of up to this many points are also held in memory, in each
    # server process (about 40 bytes a point, plus the columns asked for), and
    # small bbox views are answered from there; 0 turns it off.
    memory_index_rows: int = 2_000_000
    # The 2015 routes: which layer answers them and which fields are name and price.
    classic_layer: str = "listings"
    classic_name_field: str = "name"
    classic_price_field: str = "price"
    # A check-in classic layer: answer only the places of exactly this category
    # (and the links between two of them); empty: every place.
    classic_category: str = ""
    # PostgreSQL: connections per process, seconds to wait for one, and the
    # primary's URL when CITYSTACK_DB names a read replica (for LISTEN/NOTIFY).
    pg_pool: int = 10
    pg_timeout: float = 10.0
    db_primary: str = ""
    # Seconds between keep-alive comments on idle event streams (the 2015
    # /eventSource/ stream and progress streams alike).
    heartbeat: float = 10.0
    # Analyses. Each runs in a worker process of its server process (one per
    # slot), which is killed at the time limit or when the client leaves.
    analysis_time_limit: float = 60.0
    analysis_max_points: int = 200_000
    analysis_slots: int = 2  # analyses running at once in one process
    analysis_queue: int = 4  # analyses that may wait for a slot; beyond, 503 + Retry-After at once
    # Memory one analysis may use for its large intermediate steps (DBSCAN's
    # neighbourhoods, the co-visit graph): bigger inputs are sampled or refused.
    analysis_max_bytes: int = 500_000_000
    # 1: analyses run in worker processes (stoppable anywhere); 0: in the
    # server's own threads, stoppable only where they report progress.
    analysis_processes: int = 1
    cache_bytes: int = 64 * 1024 * 1024  # analysis results kept per process, by serialized size
    plugins: str = ""  # extra analysis modules, comma-separated dotted names
    # Privacy (analyses/privacy.py): a bin, hexagon, area or heat-map cell with fewer
    # points than min_count, or fewer distinct users than min_users (check-in layers),
    # is withheld. Requests may ask for more, never less. Check-in layers withhold
    # aggregates of fewer than checkin_min_users users unless it is set to 0.
    min_count: int = 0
    min_users: int = 0
    checkin_min_users: int = 3

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Settings":
        """Defaults, then ``CITYSTACK_*`` variables, then explicit overrides."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f"CITYSTACK_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self):
        if self.workers <= 0:
            object.__setattr__(self, "workers", default_workers())
        if self.base_url:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError(f"CITYSTACK_BASE_URL={self.base_url!r} must be an http(s) URL without "
                                 "query or fragment, e.g. https://maps.example.org/citystack")
            object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """One server process per core this process may run on (its CPU affinity, which a
    container's cpuset narrows), at most MAX_DEFAULT_WORKERS: requests are CPU-bound
    (queries, serialization) and each process serves many connections (gevent), so
    more processes than cores only cost memory."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def _convert(f: dataclasses.Field, raw: str):
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str}[f.type]
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"CITYSTACK_{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
