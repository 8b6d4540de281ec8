"""Stores: where layers live. ``open_store`` picks one from a database URL."""

from .base import Store, StoreError, UnknownField, UnknownLayer, View  # noqa: F401


def open_store(db: str) -> Store:
    """A DuckDB file path, or a ``postgresql://`` URL."""
    if db.startswith(("postgresql://", "postgres://")):
        from .postgis import PostGISStore

        return PostGISStore(db)
    from .duckdb import DuckDBStore

    return DuckDBStore(db)
