"""What the routes of one app share: settings, store, status-line hub, runner.

Blueprints reach it through :func:`state` (inside a request or an app
context), never through the app factory, so that no module imports the
module that imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:  # only for the annotations: the app factory builds these
    from .analyses.runner import Runner
    from .settings import Settings
    from .stores import Store

KEY = "citystack"


@dataclass
class State:
    settings: "Settings"
    store: "Store"
    broadcaster: object
    runner: "Runner"


def init_app(app: Flask, shared: State) -> None:
    app.extensions[KEY] = shared


def state() -> State:
    """The running app's shared State."""
    return current_app.extensions[KEY]
