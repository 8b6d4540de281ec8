"""Errors as JSON: ``{"error": ..., "detail": ...}`` with the right status.

Bad input is the client's to fix, so it gets a 4xx naming what is wrong;
only a bug on our side is a 500, and that never carries a traceback.
"""

from __future__ import annotations

import logging

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from ..analyses.registry import BadParam
from ..progress import Cancelled, TimeLimit
from ..stores.base import StoreError, StoreUnavailable, UnknownField, UnknownLayer

log = logging.getLogger("citystack")


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str = "", **extra):
        super().__init__(f"{error}: {detail}")
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


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
    if isinstance(exc, UnknownField):
        return ApiError(400, "unknown field", str(exc), parameter=exc.name)
    if isinstance(exc, TimeLimit):
        return ApiError(503, "time limit", str(exc))
    if isinstance(exc, Cancelled):
        return ApiError(499, "cancelled", "the client went away")
    if isinstance(exc, StoreUnavailable):
        return ApiError(503, "database unavailable", str(exc))
    if isinstance(exc, StoreError):
        return ApiError(400, "bad request", str(exc))
    if isinstance(exc, HTTPException):
        return ApiError(exc.code or 500, exc.name.lower(), exc.description or "")
    log.exception("internal error", exc_info=exc)
    return ApiError(500, "internal error", "the server failed to answer; see its log")


def payload(err: ApiError) -> dict:
    return {"error": err.error, "detail": err.detail, **err.extra}


def error_response(err: ApiError) -> Response:
    return Response(orjson.dumps(payload(err)), status=err.status, mimetype="application/json")


def register(app: Flask) -> None:
    @app.errorhandler(Exception)
    def handle(exc):  # noqa: ANN001
        return error_response(as_error(exc))
