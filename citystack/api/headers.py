"""Security headers on every answer the app gives: pages, JSON, errors, streams.

The Content-Security-Policy lets the page run only its own scripts and
styles (no inline script, no inline style element or attribute, no eval),
load images from itself, ``data:`` (analysis overlays) and the configured
tile host, and talk (fetch, EventSource) only to itself. No one may frame
it. The page keeps to that: its config is a JSON data element, not script.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask, Response

from ..settings import Settings

SOURCE = re.compile(r"(?:https?://)?(?:\*\.)?[A-Za-z0-9.-]+(?::(?:[0-9]+|\*))?|(?:https?://)?\[[0-9A-Fa-f:.]+\](?::[0-9]+)?",
                    re.ASCII)


def tile_source(tile_url: str) -> str | None:
    """The CSP source of a Leaflet tile URL template, or None when it is the app's own.

    ``https://{s}.tile.example.org/{z}/{x}/{y}.png`` gives ``https://*.tile.example.org``:
    a template in a host label becomes the leftmost wildcard CSP allows.
    """
    parts = urlsplit(tile_url)
    if not parts.netloc:
        return None  # relative: served by the app, covered by 'self'
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        host, port = host + "]", rest[1:]
    else:
        host, _, port = hostport.partition(":")
    labels = host.split(".")
    templated = [i for i, label in enumerate(labels) if "{" in label]
    if templated:
        labels = ["*"] + labels[templated[-1] + 1:]
    if port and not port.isdigit():
        port = "*"  # a templated port
    source = (f"{parts.scheme}://" if parts.scheme else "") + ".".join(labels) + (f":{port}" if port else "")
    if not SOURCE.fullmatch(source) or labels == ["*"]:
        raise ValueError(f"CITYSTACK_TILE_URL={tile_url!r}: its host {host!r} cannot be allowed by the "
                         "Content-Security-Policy (use a plain host name, templates only in its first labels)")
    return source


def policy(settings: Settings) -> str:
    images = ["'self'", "data:"]
    tiles = tile_source(settings.tile_url)
    if tiles:
        images.append(tiles)
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": images,
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy(settings),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def install(app: Flask, settings: Settings) -> None:
    fixed = headers(settings)

    @app.after_request
    def secure(response: Response) -> Response:
        for name, value in fixed.items():
            response.headers.setdefault(name, value)
        return response
