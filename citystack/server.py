"""The production server: gunicorn with threaded workers, configured in code."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from .settings import Settings


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
        }.items():
            self.cfg.set(key, value)

    def load(self):
        from .app import create_app

        return create_app(self.settings)


def run(settings: Settings) -> None:
    _Gunicorn(settings).run()
