"""Features as an Apache Arrow IPC stream (``format=arrow``): the page's binary transport.

The same rows, in the same order, as the GeoJSON answer to the same request
(the store's ``features``): columns ``lon`` and ``lat`` (float64), ``id``
(int64 when the ids are integers, exact beyond 2^53; else text), then the
properties under their public names, typed by the layer's field:

- numbers: float64, or int64 for a field of integers; NULL (NaN) is null;
- text: utf8, dictionary-encoded for a category field (or a page whose
  distinct values are at most half its rows);
- bool: bool; time: timestamp[us] (naive UTC); date: date32;
- any NULL is an Arrow null.

The next page, when there is one, is in a ``Link: <...>; rel="next"`` header
(the body is one IPC stream, with nowhere for links); ``X-Number-Returned``
says how many rows the stream holds.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from flask import Response

from ..stores.base import BOOL, DATE, NUMERIC, TIME, FieldInfo, LayerInfo

MIMETYPE = "application/vnd.apache.arrow.stream"


def features_response(db, info: LayerInfo, view, properties, limit: int, offset: int, next_url: str) -> Response:
    """The Arrow answer of a features request already checked by api/features.py."""
    native = getattr(db, "features_arrow", None)
    got = native(info.name, view, properties, limit + 1, offset) if native else None
    if got is not None:  # the store's own Arrow (DuckDB): typed here, no Python value per row
        table = typed_table(*got, info)
    else:
        table = to_table(db.features(info.name, view, properties, limit + 1, offset), info)
    more = table.num_rows > limit
    table = table.slice(0, limit)
    body = ipc(table)
    headers = {"X-Number-Returned": str(table.num_rows), "Content-Length": str(body.size)}
    if more:
        headers["Link"] = f'<{next_url}>; rel="next"'
    return Response(_chunks(body), mimetype=MIMETYPE, headers=headers, direct_passthrough=True)


def _chunks(buffer: pa.Buffer, size: int = 1 << 20):
    """The stream as bytes (what WSGI servers take), a megabyte at a time: a million points
    are ~25 MB, not copied whole once more."""
    view = memoryview(buffer)
    for start in range(0, len(view), size):
        yield bytes(view[start:start + size])


def to_ipc(cols: dict, info: LayerInfo, limit: int | None = None) -> pa.Buffer:
    """A store's features answer (at most `limit` rows) as one Arrow IPC stream (a buffer:
    bytes(...) or memoryview(...) of it)."""
    return ipc(to_table(cols, info, limit))


def ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def to_table(cols: dict, info: LayerInfo, limit: int | None = None) -> pa.Table:
    n = len(cols["id"]) if limit is None else min(limit, len(cols["id"]))
    names = ["lon", "lat", "id"]
    arrays = [pa.array(np.asarray(cols["lon"][:n], dtype=np.float64)),
              pa.array(np.asarray(cols["lat"][:n], dtype=np.float64)),
              _ids(cols["id"][:n])]
    for name, values in cols["properties"].items():
        names.append(name)
        arrays.append(column(values[:n], info.field(name)))
    # A property may be named like a position (a GeoJSON property "lat"): Arrow allows
    # repeated names; readers take positions from the first three columns.
    return pa.Table.from_arrays(arrays, names=names)


def typed_table(table: pa.Table, fields: list, info: LayerInfo) -> pa.Table:
    """A store's Arrow table (id, lon, lat, then the fields' columns) typed as to_table types
    the numpy answer, under the fields' public names."""
    lon = table.column("lon").cast(pa.float64())
    lat = table.column("lat").cast(pa.float64())
    ids = table.column("id")
    if not (pa.types.is_integer(ids.type)):
        ids = ids.cast(pa.string())
    arrays, names = [lon, lat, ids], ["lon", "lat", "id"]
    for k, f in enumerate(fields):
        arrays.append(_typed(table.column(3 + k).combine_chunks(), f))
        names.append(f.name)
    return pa.Table.from_arrays(arrays, names=names)


def _typed(arr: pa.Array, field: FieldInfo) -> pa.Array:
    kind = arr.type
    if pa.types.is_floating(kind):
        arr = arr.cast(pa.float64())
        nan = pc.is_nan(arr)
        if pc.any(nan).as_py():  # NaN is NULL, as GeoJSON writes it
            arr = pc.if_else(nan, pa.scalar(None, pa.float64()), arr)
        if field.integer:
            try:
                return arr.cast(pa.int64())  # safe: refused when a value is not an integer
            except pa.ArrowInvalid:
                return arr
        return arr
    # As the numpy path types them (by the field's metadata), so that every store answers alike:
    # integers with NULLs are float64 unless the field is known to hold integers; a date
    # column is date32 when the field is a date, else a timestamp.
    if pa.types.is_integer(kind):
        return arr.cast(pa.float64() if arr.null_count and not field.integer else pa.int64())
    if pa.types.is_decimal(kind):
        return arr.cast(pa.float64())
    if pa.types.is_timestamp(kind):
        return arr.cast(pa.timestamp("us"))
    if pa.types.is_date(kind):
        return arr.cast(pa.date32() if field.type == DATE else pa.timestamp("us"))
    if pa.types.is_boolean(kind):
        return arr
    if field.type == DATE:
        return arr.cast(pa.date32())
    if pa.types.is_dictionary(kind):
        arr = arr.cast(pa.string())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind) \
            or pa.types.is_dictionary(kind):
        return _text(arr.cast(pa.string()), field)
    return arr


def _ids(values: np.ndarray) -> pa.Array:
    if values.dtype.kind in "iu":
        return pa.array(values, pa.int64() if values.dtype.kind == "i" else pa.uint64())
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        return pa.array(values.astype(np.int64))
    return pa.array([None if v is None else str(v) for v in values.tolist()], pa.string())


def column(values: np.ndarray, field: FieldInfo) -> pa.Array:
    """One property column, typed by its field (the data's own type where the field says text)."""
    kind = values.dtype.kind
    if field.type == NUMERIC or kind in "iuf":
        return _number(values, field)
    if field.type == BOOL or kind == "b":
        return pa.array(values if kind == "b" else _objects(values), pa.bool_())
    if field.type == DATE:
        return pa.array(_dates(values), pa.date32())
    if field.type == TIME or kind == "M":
        return _times(values)
    try:  # text (None for NULL), converted in C
        return _text(pa.array(values, pa.string(), from_pandas=True), field)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # typed values under a text field (an older database)
        return pa.array(_objects(values))


def _number(values: np.ndarray, field: FieldInfo) -> pa.Array:
    kind = values.dtype.kind
    if kind in "iu":
        return pa.array(values)
    if kind != "f":  # object: None for NULL
        values = np.array([np.nan if v is None else v for v in values.tolist()], dtype=np.float64)
    nulls = np.isnan(values)
    if field.integer and np.all(values[~nulls] == np.round(values[~nulls])):
        filled = np.where(nulls, 0, values).astype(np.int64)
        return pa.array(filled, pa.int64(), mask=nulls)
    return pa.array(values, pa.float64(), mask=nulls if nulls.any() else None)


def _times(values: np.ndarray) -> pa.Array:
    if values.dtype.kind == "M":
        return pa.array(values.astype("datetime64[us]"), pa.timestamp("us"))
    return pa.array(_objects(values), pa.timestamp("us"))


def _dates(values: np.ndarray) -> list:
    if values.dtype.kind == "M":
        return values.astype("datetime64[D]").tolist()  # datetime.date, or None for NaT
    out = []
    for v in _objects(values):
        out.append(v.date() if hasattr(v, "date") and callable(v.date) else v)
    return out


def _text(arr: pa.Array, field: FieldInfo) -> pa.Array:
    if len(arr) == 0:
        return arr.dictionary_encode() if field.category else arr
    encoded = arr.dictionary_encode()
    if field.category or len(encoded.dictionary) * 2 <= len(arr):
        return encoded
    return arr


def _objects(values: np.ndarray) -> list:
    """Python values, with NaN and NaT as None."""
    out = values.tolist()
    if values.dtype.kind == "M":
        return out  # NaT is None already
    return [None if (isinstance(v, float) and v != v) else v for v in out]
