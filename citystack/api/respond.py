"""Answer a piece of work as JSON, or as a stream of progress events.

A view parses its request first, then hands :func:`respond` a function of
one argument, a Progress, which returns what to answer: an object to send
as JSON, or JSON already serialized (bytes). With ``Accept: text/event-stream`` the function
runs in a thread and its progress streams in the same response (so any
number of server processes can serve it), ending with one ``result`` or
``error`` event. The function must not touch ``flask.request``.

Either way the work is cancelled when the client goes away: a stream's
generator is closed by the server when a write fails, and both ways
api/peer.py's look at the connection runs while the work does (a client
that leaves is noticed within half a second).
"""

from __future__ import annotations

from typing import Any, Callable

import orjson
from flask import Response, request

from ..events import sse
from ..events.progress import Progress, stream
from ..state import state
from .errors import as_error, payload
from .peer import gone_check

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def json_response(obj: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(orjson.dumps(obj, option=JSON_OPTIONS), status=status, mimetype=mimetype)


def wants_stream() -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


def respond(work: Callable[[Progress], Any], time_limit: float | None = None,
            mimetype: str = "application/json") -> Response:
    probe = gone_check(request.environ)
    if wants_stream():
        def on_error(exc: BaseException) -> dict:
            err = as_error(exc)
            return {**payload(err), "status": err.status}

        return Response(stream(lambda progress: _as_text(work(progress)), on_error, time_limit,
                               state().settings.heartbeat, probe),
                        mimetype=sse.MIMETYPE, headers=sse.HEADERS)
    result = work(Progress(None, time_limit, probe))
    if isinstance(result, Response):
        return result
    if isinstance(result, (bytes, bytearray)):  # JSON already
        return Response(bytes(result), mimetype=mimetype)
    return json_response(result, mimetype=mimetype)


def _as_text(result: Any) -> Any:
    """JSON given as bytes, as the text an event's data takes unchanged."""
    return result.decode() if isinstance(result, (bytes, bytearray)) else result
