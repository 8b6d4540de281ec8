"""Answer a piece of work as JSON, or as a stream of progress events.

A view parses its request first, then hands :func:`respond` a function of
one argument, a Progress, which returns what to answer: an object to send
as JSON, or JSON already serialized (bytes). With ``Accept: text/event-stream`` the function
runs in a thread and its progress streams in the same response (so any
number of server processes can serve it), ending with one ``result`` or
``error`` event. The function must not touch ``flask.request``.

Either way the work is cancelled when the client goes away: a stream's
generator is closed by the server when a write fails, and both ways
:func:`departure_probe` looks at the connection while the work runs.
"""

from __future__ import annotations

import select
import socket
from typing import Any, Callable

import orjson
from flask import Response, request

from ..events import sse
from ..events.progress import Progress, stream
from ..state import state
from .errors import as_error, payload

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def json_response(obj: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(orjson.dumps(obj, option=JSON_OPTIONS), status=status, mimetype=mimetype)


def wants_stream() -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


def respond(work: Callable[[Progress], Any], time_limit: float | None = None,
            mimetype: str = "application/json") -> Response:
    probe = departure_probe(request.environ)
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


def departure_probe(environ) -> Callable[[], bool] | None:
    """A function telling whether the client of this request has closed its
    connection, for work that should stop then (None where the server does
    not give the socket). A GET has no body, so a readable socket is either
    the client's next pipelined request (data) or its end (nothing to read)."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is None or not hasattr(sock, "recv"):
        return None

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (ConnectionError, OSError) as exc:
            return not isinstance(exc, (BlockingIOError, InterruptedError))
        except ValueError:  # a TLS socket takes no flags: cannot tell
            return False

    return gone
