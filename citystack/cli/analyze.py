"""`citystack analyze`: run an analysis from the command line, write JSON,
GeoJSON or a PNG picture of the result."""

from __future__ import annotations

import os

import orjson

from werkzeug.datastructures import MultiDict

from ..analyses import registry
from ..api import params
from ..checks import BadParam
from .export import to_geojson
from ..analyses import pool as pools
from ..analyses.runner import Runner
from ..events.progress import Progress, TimeLimit
from ..stores import StoreError, open_store

FORMATS = (".json", ".geojson", ".png")


def extra_params(args: list[str], fail) -> dict:
    """``--name value`` / ``--name=value`` pairs after the known options."""
    out, i = {}, 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--"):
            fail(f"unexpected argument {token!r}; analysis parameters are given as --NAME VALUE")
        key, _, value = token[2:].partition("=")
        if not _:
            if i + 1 >= len(args):
                fail(f"parameter --{key} needs a value")
            value, i = args[i + 1], i + 1
        out[key.replace("-", "_")] = value
        i += 1
    return out


def view_args(bbox=None, days=None, hours=None, start=None, end=None, where=(), fail=None) -> MultiDict:
    """The CLI's view flags as the query string the API reads (api/params.view): one parser
    for both. ``--where FIELD=VALUE`` pairs are the field filters."""
    args = MultiDict()
    for key, value in (("bbox", bbox), ("days", days), ("hours", hours), ("from", start), ("to", end)):
        if value is not None:
            args.add(key, value)
    for item in where:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--where takes FIELD=VALUE (FIELD_not=, FIELD_min=, FIELD_max= too), got {item!r}")
        args.add(key, value)
    return args


def flag(name: str, where) -> str:
    """The flag a BadParam's parameter came from."""
    if name in params.VIEW_PARAMS:
        return f"--{name}"
    return f"--where {name}" if any(w.partition("=")[0] == name for w in where) else f"--{name}"


def run_analysis(ctx, conf, name, layer, bbox, days, hours, out, bar_class, error_class,
                 start=None, end=None, where=()):
    def fail(message):
        raise error_class(message)

    ext = os.path.splitext(out)[1].lower()
    if ext not in FORMATS:
        fail(f"--out must end in {', '.join(FORMATS)}, got {out!r}")
    raw = extra_params(ctx.args, fail)
    runner = None
    try:
        store = open_store(conf.db, conf)
        # The view first: its mistakes are told before the analyses' imports take their time.
        view = params.view(view_args(bbox, days, hours, start, end, where, fail), store.layer(layer), set())
        if conf.analysis_processes:
            pools.warm()  # the worker's imports run beside ours
        registry.load(conf.plugins.split(",") if conf.plugins else ())
        # As the server runs it: in a worker process, killed at the time limit.
        runner = Runner(store, conf.replace(analysis_slots=1, analysis_queue=0, cache_bytes=0))
        analysis, info, values = runner.prepare(name, layer, raw)
        with bar_class(name) as bar:
            result = runner.run(analysis, info, view, values, Progress(bar, conf.analysis_time_limit))
    except BadParam as exc:
        fail(f"{flag(exc.name, where)}: {exc.detail}")
    except (StoreError, TimeLimit) as exc:
        fail(str(exc))
    finally:
        if runner is not None:
            runner.close()
    if ext == ".png":
        from .render import render

        cols = store.columns(layer, view, ["lon", "lat"], conf.analysis_max_points)
        render(result, cols["lon"], cols["lat"], out)
    else:
        body = to_geojson(result) if ext == ".geojson" else result
        with open(out, "wb") as fh:
            fh.write(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_INDENT_2))
    print(f"wrote {out}")
