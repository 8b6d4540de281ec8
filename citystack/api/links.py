"""Links the API hands out: from the configured base URL, or relative.

Never from the request's ``Host`` header (nor X-Forwarded-Host): a client
must not be able to make the server print links to a host of its choosing
(cache poisoning, password-reset style phishing). With ``CITYSTACK_BASE_URL``
set, links are absolute under it; without, they are paths from the root the
WSGI server mounts the app at (``SCRIPT_NAME``, which the server, not the
client, sets).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from flask import request

from ..state import state


def root() -> str:
    """The app's root without a trailing slash: the base URL, or the mount path."""
    return state().settings.base_url or request.script_root.rstrip("/")


def link(path: str, query: list[tuple[str, str]] | None = None) -> str:
    """A link to `path` (starting with /) of this app, with an optional query."""
    return root() + path + (f"?{urlencode(query)}" if query else "")


def segment(value: str) -> str:
    """A value quoted to stand as one path segment."""
    return quote(value, safe="")
