"""Errors as JSON: ``{"error": ..., "detail": ...}`` with the right status.

Client mistakes are 4xx naming what is wrong (BadParam: 400, UnknownLayer:
404); a database that cannot be reached, or a full analysis queue (Busy), is
a 503 with ``Retry-After``; any
other failure, a database fault included, is a 500 whose body carries only a
request id, the same id as the log line with the traceback: no database or
driver message ever reaches a client.
"""

from __future__ import annotations

import logging
import uuid

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from ..analyses.runner import Busy
from ..checks import BadParam
from ..events.progress import Cancelled, TimeLimit
from ..stores.base import StoreUnavailable, UnknownLayer

log = logging.getLogger("citystack")
RETRY_AFTER = 5  # seconds a client is asked to wait when the server is busy or the database away


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str = "", headers: dict | None = None, **extra):
        super().__init__(f"{error}: {detail}")
        self.status, self.error, self.detail, self.extra = status, error, detail, extra
        self.headers = headers or {}


def bad_param(name: str, detail: str) -> ApiError:
    return ApiError(400, f"invalid parameter {name}", detail, parameter=name)


def as_error(exc: BaseException) -> ApiError:
    """The ApiError that stands for any exception raised while answering."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, BadParam):
        return bad_param(exc.name, exc.detail)
    if isinstance(exc, UnknownLayer):
        return ApiError(404, "unknown layer", str(exc))
    if isinstance(exc, Busy):
        return ApiError(503, "busy", exc.detail, headers={"Retry-After": str(exc.retry_after or RETRY_AFTER)})
    if isinstance(exc, TimeLimit):
        return ApiError(503, "time limit", str(exc))
    if isinstance(exc, Cancelled):
        return ApiError(499, "cancelled", "the client went away")
    if isinstance(exc, StoreUnavailable):
        log.warning("database unavailable: %s", exc)
        return ApiError(503, "database unavailable", "the database cannot be reached just now; try again",
                        headers={"Retry-After": str(RETRY_AFTER)})
    if isinstance(exc, HTTPException):
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
        return ApiError(exc.code or 500, exc.name.lower(), exc.description or "", headers=headers)
    request_id = uuid.uuid4().hex[:16]
    log.error("internal error, request id %s", request_id, exc_info=exc)
    return ApiError(500, "internal error", f"the server failed to answer; its log has the details "
                                           f"under request id {request_id}", request_id=request_id)


def payload(err: ApiError) -> dict:
    return {"error": err.error, "detail": err.detail, **err.extra}


def error_response(err: ApiError) -> Response:
    return Response(orjson.dumps(payload(err)), status=err.status, mimetype="application/json",
                    headers=err.headers)


def register(app: Flask) -> None:
    @app.errorhandler(Exception)
    def handle(exc):  # noqa: ANN001
        return error_response(as_error(exc))
