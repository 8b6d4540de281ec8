"""Server-Sent Events framing: the one place that writes the wire format."""

from __future__ import annotations

from typing import Any

import orjson

# Headers of every event stream: never cached, never buffered by a proxy (nginx).
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MIMETYPE = "text/event-stream"


def frame(event: str | None, data: Any, id: int | str | None = None) -> bytes:
    """One event; `data` is JSON unless it is already a string (split over
    ``data:`` lines at its newlines, as the format requires)."""
    body = data if isinstance(data, str) else orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    head = (f"id: {id}\n" if id is not None else "") + (f"event: {event}\n" if event else "")
    return (head + "".join(f"data: {line}\n" for line in body.split("\n")) + "\n").encode()


def comment(text: str) -> bytes:
    """A comment line: ignored by clients, it keeps a connection alive (and a
    write to a closed connection is how a server finds the client gone)."""
    return f": {text}\n\n".encode()
