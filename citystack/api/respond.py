"""Answer a piece of work as JSON, or as a stream of progress events.

A view parses its request first, then hands :func:`respond` a function of
one argument, a Progress. With ``Accept: text/event-stream`` the function
runs in a thread and its progress streams in the same response (so any
number of server processes can serve it), ending with one ``result`` or
``error`` event. The function must not touch ``flask.request``. A client
that leaves a stream is noticed within half a second (api/peer.py), and
its work cancelled.
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
    if wants_stream():
        def on_error(exc: BaseException) -> dict:
            err = as_error(exc)
            return {**payload(err), "status": err.status}

        events = stream(work, on_error, time_limit, state().settings.heartbeat, gone_check(request.environ))
        return Response(events, mimetype=sse.MIMETYPE, headers=sse.HEADERS)
    result = work(Progress(None, time_limit))
    return result if isinstance(result, Response) else json_response(result, mimetype=mimetype)
