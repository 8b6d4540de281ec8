"""The Flask application factory: settings in, an app with its blueprints out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, current_app

from .analyses import registry
from .analyses.runner import Runner
from .broadcast import Broadcaster
from .settings import Settings
from .stores import Store, open_store


@dataclass
class State:
    """What the routes share, kept in ``app.extensions["citystack"]``."""

    settings: Settings
    store: Store
    broadcaster: Broadcaster
    runner: Runner


def state() -> State:
    """The running app's shared State (inside a request)."""
    return current_app.extensions["citystack"]


def create_app(settings: Settings | None = None, store: Store | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False
    store = store or open_store(settings.db, settings)
    registry.load(settings.plugins.split(",") if settings.plugins else ())
    runner = Runner(store, settings.analysis_max_points, settings.cache_entries, settings.analysis_slots)
    app.extensions["citystack"] = State(settings, store, store.broadcaster(), runner)
    logging.getLogger("citystack").setLevel(logging.INFO)

    from .api import analyses, classic, errors, features, openapi, pages

    errors.register(app)
    for module in (pages, features, analyses, classic, openapi):
        app.register_blueprint(module.bp)
    return app
