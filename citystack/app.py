"""The Flask application factory: settings in, an app with its blueprints out."""

from __future__ import annotations

import logging

from flask import Flask

from . import state
from .analyses import pool, registry
from .analyses.runner import Runner
from .settings import Settings
from .stores import Store, open_store


def create_app(settings: Settings | None = None, store: Store | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if settings.analysis_processes:
        pool.warm()  # the analysis workers' forkserver imports numpy, scikit-learn, ... beside the imports below
    from .api import (analyses, classic, density, errors, export, features, headers, histograms, limits,
                      openapi, pages)

    app = Flask(__name__)
    app.json.sort_keys = False
    store = store or open_store(settings.db, settings)
    registry.load(settings.plugins.split(",") if settings.plugins else ())
    runner = Runner(store, settings)  # starts the workers: once the forkserver has imported
    state.init_app(app, state.State(settings, store, store.broadcaster(), runner))
    logging.getLogger("citystack").setLevel(logging.INFO)
    errors.register(app)
    limits.install(app, settings)
    headers.install(app, settings)
    for module in (pages, features, density, histograms, export, analyses, classic, openapi):
        app.register_blueprint(module.bp)
    return app
