"""Stores: where layers live. ``open_store`` picks one from a database URL."""

from .base import Store, StoreError, UnknownField, UnknownLayer, View  # noqa: F401


def open_store(db: str, settings=None) -> Store:
    """A DuckDB file path, or a ``postgresql://`` URL (pool and index settings from `settings`)."""
    if is_postgres(db):
        from .postgis import PostGISStore

        if settings is None:
            return PostGISStore(db)
        return PostGISStore(db, settings.pg_pool, settings.pg_timeout, settings.db_primary or None)
    from .duckdb import DuckDBStore

    return DuckDBStore(db, settings.memory_index_rows if settings is not None else 0)


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def open_writer(db: str):
    """A context manager giving a :class:`staging.Staging` to build layers in (a DuckDB
    connection, the layers the database holds, ``publish``); what it builds lands in
    the database, whole, when the block succeeds, and nothing does when it fails. One
    write at a time: on a DuckDB file a second is refused (StoreError) while one
    runs; on PostgreSQL it waits its turn."""
    if is_postgres(db):
        from .postgis_writer import write_database
    else:
        from .duckdb_writer import write_database
    return write_database(db)
