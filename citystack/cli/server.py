"""The production server: gunicorn with threaded workers, configured in code."""

from __future__ import annotations

import gc

from gunicorn.app.base import BaseApplication

from ..settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self):
        conf = self.settings
        host = f"[{conf.host}]" if ":" in conf.host else conf.host
        for key, value in {
            "bind": f"{host}:{conf.port}",
            "workers": conf.workers,
            "threads": conf.threads,
            "worker_class": "gthread",
            "timeout": 120,
            "graceful_timeout": 5,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "post_worker_init": _settle_memory,
            "worker_exit": _close_store,
        }.items():
            self.cfg.set(key, value)

    def load(self):
        from ..app import create_app

        return create_app(self.settings)


def _settle_memory(worker) -> None:
    """Move what the app loaded (numpy, scikit-learn, networkx: ~130,000 objects)
    out of the garbage collector's sight, and collect less often: otherwise each
    request's few thousand short-lived dicts trigger full collections of it all
    (measured: 9 ms -> 6 ms of CPU per features request)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _close_store(server, worker) -> None:
    """Close the database and hand the frozen objects back to the collector before
    the interpreter goes: DuckDB objects left alive at exit make its bindings print
    pages of (harmless) leak warnings."""
    from ..state import state

    with worker.wsgi.app_context():
        state().store.close()
    gc.unfreeze()


def run(settings: Settings) -> None:
    _Gunicorn(settings).run()
