"""The production server: gunicorn, configured in code.

Two kinds of worker (``CITYSTACK_SERVER``): ``gevent``, the default, where
each connection is a greenlet and a worker holds up to
``CITYSTACK_CONNECTIONS`` of them (open event streams included), with header
and keep-alive timeouts (gevent_worker.py); and ``gthread``, gunicorn's
threaded worker, where each connection in use holds one of
``CITYSTACK_THREADS`` threads (an event stream for as long as it is open, a
slow-header client until it is done). docs/deploy.md compares them.
"""

from __future__ import annotations

import gc
import math
import resource
import sys

from gunicorn.app.base import BaseApplication

from ..settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self):
        conf = self.settings
        host = f"[{conf.host}]" if ":" in conf.host else conf.host
        workers = {"gevent": {"worker_class": "citystack.cli.gevent_worker.Worker"},
                   "gthread": {"worker_class": "gthread", "threads": conf.threads}}[conf.server]
        for key, value in {
            "bind": f"{host}:{conf.port}",
            "workers": conf.workers,
            **workers,
            "worker_connections": conf.connections,
            "timeout": 120,
            "graceful_timeout": 5,
            "keepalive": max(1, math.ceil(conf.keepalive)),  # gevent: the worker applies the exact value
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


def _raise_file_limit(connections: int) -> None:
    """Every connection is a file descriptor: raise this process's soft limit
    (which the workers inherit) towards what `connections` needs, as far as the
    hard limit lets it (a soft limit of 1,024 is common)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256  # database connections, the store's files, the listening socket
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            print(f"citystack: only {new} open files allowed (ulimit -n); a worker cannot hold "
                  f"{connections} connections", file=sys.stderr)


def run(settings: Settings) -> None:
    _raise_file_limit(settings.connections)
    _Gunicorn(settings).run()
