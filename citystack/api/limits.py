"""Limits on what a request may bring, checked before anything reads it.

A request target (path and query string) longer than ``max_url_length`` is
a 414, request headers of more than ``max_header_bytes`` a 431: a JSON
error at once, before the query string is parsed, whatever the route. A
server in front may refuse sooner (gunicorn: 414 past its
``limit_request_line``, 431 past ``limit_request_field_size``), in its own
words.
"""

from __future__ import annotations

from flask import Flask, request

from ..settings import Settings
from .errors import ApiError


def install(app: Flask, settings: Settings) -> None:
    max_url, max_headers = settings.max_url_length, settings.max_header_bytes

    @app.before_request
    def within_limits():
        environ = request.environ
        target = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
        if target > max_url:
            raise ApiError(414, "request target too long",
                           f"the path and query string hold {target:,} bytes; at most {max_url:,} are read "
                           "(CITYSTACK_MAX_URL_LENGTH)")
        size = sum(len(k) - 5 + len(v) for k, v in environ.items() if k.startswith("HTTP_") and isinstance(v, str))
        size += len(environ.get("CONTENT_TYPE", "")) + len(environ.get("CONTENT_LENGTH", ""))
        if size > max_headers:
            raise ApiError(431, "request headers too large",
                           f"the request headers hold about {size:,} bytes; at most {max_headers:,} are read "
                           "(CITYSTACK_MAX_HEADER_BYTES)")
