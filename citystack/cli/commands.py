"""The ``citystack`` command: init, load, layers, serve, analyze."""

from __future__ import annotations

import ipaddress
import os
import sys

import click

from ..settings import Settings


class CliError(click.ClickException):
    """Bad input: a message and exit code 2, never a traceback."""

    exit_code = 2


def db_option(func):
    return click.option("--db", envvar="CITYSTACK_DB", default=None, show_default="data/citystack.duckdb",
                        help="DuckDB file (or postgresql:// URL); also CITYSTACK_DB.")(func)


def settings(**overrides) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise CliError(str(exc)) from None


class Bar:
    """A click progress bar driven by (message, fraction) callbacks."""

    def __init__(self, label: str):
        self._bar = click.progressbar(length=1000, label=label, file=sys.stderr, show_eta=False,
                                      item_show_func=lambda m: m)
        self._done = 0

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def __call__(self, message: str, fraction: float | None = None) -> None:
        if fraction is not None:
            target = int(max(0.0, min(1.0, fraction)) * 1000)
            if target > self._done:
                self._bar.update(target - self._done, message)
                self._done = target
                return
        self._bar.update(0, message)


@click.group()
@click.version_option(package_name="citystack")
def main():
    """citystack: geolocated city data on a map, with analyses on the server."""


@main.command()
@db_option
@click.option("--sample", is_flag=True, help="Fill it with the synthetic sample city (Futian, Shenzhen).")
@click.option("--seed", default=2015, show_default=True, help="Seed of the sample city.")
@click.option("--force", is_flag=True, help="Replace an existing database file; in PostgreSQL, go on "
                                             "where there are layers (the sample's replace those of their names).")
def init(db, sample, seed, force):
    """Create the database, optionally with the sample city."""
    from ..ingest.sample import create
    from ..stores import is_postgres, open_writer

    conf = settings(db=db)
    if is_postgres(conf.db):
        store = _store(db)
        try:
            existing = [info.name for info in store.layers()]
        finally:
            store.close()
        if existing and not force:
            raise CliError(f"the database has layers already ({', '.join(existing)}); load into it, or use "
                           "--force to go on (layers of the sample's names are replaced, the others kept)")
    elif os.path.exists(conf.db):
        if not force:
            raise CliError(f"{conf.db} exists already; use --force to replace it, or load into it")
        os.unlink(conf.db)
    with open_writer(conf.db):
        pass
    if sample:
        with Bar("sample city") as bar:
            reports = create(conf.db, seed, bar)
        for report in reports:
            for layer in report.layers:
                click.echo(f"  {layer['name']}: {layer['count']} {layer['kind']}")
    click.echo(f"created {conf.db}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--layer", required=True, help="Name of the layer to create or replace.")
@click.option("--preset", type=click.Choice(["airbnb", "foursquare"]), help="Column mapping of a known source.")
@click.option("--lat", help="Latitude column (found by name if not given).")
@click.option("--lon", help="Longitude column (found by name if not given).")
@click.option("--id", "id_", help="Unique id column.")
@click.option("--name", help="Name field: names a feature in tooltips (found by name if not given: "
                               "name, title, common_name, description, address ...).")
@click.option("--price", help="Price column (text like $1,234.00 is parsed).")
@click.option("--time", help="Timestamp column: the layer's time field (default: the one timestamp column "
                              "found); check-ins: their time.")
@click.option("--user", help="Check-ins: user column.")
@click.option("--place", help="Check-ins: place column.")
@click.option("--category", help="Check-ins: place category column.")
@click.option("--type", "types", multiple=True, metavar="COL=TYPE",
              help="A column's type, overruling detection (repeatable): text, number, integer, bool, time, "
                   "date, unix_s or unix_ms (Unix seconds or milliseconds). COL is the file's name.")
@click.option("--skip-invalid", is_flag=True, help="Load the rows with valid coordinates (and, in GeoJSON, the "
                                                   "Point features) and report the rest.")
@click.option("--append", is_flag=True, help="Add the rows of FILE... to layer LAYER (made by the first file "
                                             "if it does not exist), all or none; they must have its fields "
                                             "and types. Row-numbered ids continue after the layer's highest.")
@click.option("--replace", is_flag=True, help="Replace layers of another pair too: a check-in layer's places "
                                               "layer, or a layer of its own named LAYER_places.")
@db_option
def load(files, layer, preset, lat, lon, id_, name, price, time, user, place, category, types, skip_invalid,
         append, replace, db):
    """Import a CSV, GeoJSON or Parquet file as a layer (several, with --append).

    A check-in file (with --user and --place, or --preset foursquare) becomes
    two layers: LAYER (the check-ins) and LAYER_places. A layer of the same
    name is replaced (the report says so); one that belongs to another
    check-in layer's pair only with --replace. A trips file (start_lat,
    start_lng, end_lat, end_lng ...) loads as points at the starts.
    """
    from ..ingest import IngestError, Mapping
    from ..ingest.load import load_files
    from ..ingest.presets import PRESETS
    from ..ingest.types import TypeSpecError, parse_types
    from ..stores.base import StoreError

    conf = settings(db=db)
    try:
        given = parse_types(types)
    except TypeSpecError as exc:
        raise CliError(str(exc)) from None
    mapping = (PRESETS[preset] if preset else Mapping()).merged(
        lat=lat, lon=lon, id=id_, name=name, price=price, time=time, user=user, place=place, category=category)
    if bool(mapping.user) != bool(mapping.place):
        raise CliError("check-ins need both --user and --place")
    label = os.path.basename(files[0]) + (f" and {len(files) - 1} more" if len(files) > 1 else "")
    try:
        with Bar(f"loading {label}") as bar:
            reports = load_files(conf.db, list(files), layer, mapping, skip_invalid, bar, replace=replace,
                                 append=append, types=given)
    except (IngestError, StoreError) as exc:
        raise CliError(f"{exc}\nnothing was changed in {conf.db}") from None
    for report in reports:
        click.echo(f"read {report.rows} rows from {report.file} ({report.format})")
        for item in report.layers:
            extra = f", {item['users']} users" if "users" in item else ""
            added = f" ({item['added']} added)" if "added" in item else ""
            click.echo(f"  layer {item['name']}: {item['count']} {item['kind']}{added}{extra}")
        _print_fields(report)
        for note in report.names + report.notes:
            click.echo(f"  note: {note}")


def _print_fields(report) -> None:
    """Each field with its type, the time field, and the values that did not parse."""
    if report.fields:
        click.echo("  fields:")
        for f in report.fields:
            mark = "  (time field)" if f["name"] == report.time_field else ""
            click.echo(f"    {f['name']:<32} {f['type']}{mark}")
    click.echo(f"  time field: {report.time_field or 'none'}")
    for item in report.unparsed:
        lines = "; ".join(f"line {line}: {value!r}" for line, value in item["lines"])
        more = " ..." if item["count"] > len(item["lines"]) else ""
        click.echo(f"  unparsed: {item['count']} value{'s' if item['count'] > 1 else ''} of {item['field']} "
                   f"{'are' if item['count'] > 1 else 'is'} not {item['type']} "
                   f"(now empty): {lines}{more}")


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def layers(db, as_json):
    """List layers: row count, fields and types, extent."""
    import orjson

    infos = _store(db).layers()
    if as_json:
        click.echo(orjson.dumps([i.as_json() for i in infos], option=orjson.OPT_INDENT_2).decode())
        return
    if not infos:
        click.echo("no layers; load some with `citystack load FILE --layer NAME`")
    for info in infos:
        extent = ", ".join(f"{v:.5f}" for v in info.extent) if info.extent else "-"
        click.echo(f"{info.name}  ({info.kind}, {info.count} rows, extent {extent})")
        for f in info.fields:
            detail = (f"{f.min:g} .. {f.max:g}" if f.type == "number" and f.min is not None else
                      f"{f.min} .. {f.max}" if f.min is not None else
                      ", ".join(one_line(v) for v, _ in (f.top or [])[:3]))
            click.echo(f"    {one_line(f.name, 32):<32} {f.type:<7} {detail}")


@main.command()
@db_option
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 5000).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Server processes (default: one per core, at most 8; CITYSTACK_WORKERS).")
@click.option("--connections", type=click.IntRange(1, 100_000), default=None,
              help="Open connections per process, event streams included (default 4000).")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="Threads per process, for CITYSTACK_SERVER=gthread only (default 32).")
@click.option("--allow-remote", is_flag=True, envvar="CITYSTACK_ALLOW_REMOTE",
              help="Let a non-loopback --host (e.g. 0.0.0.0) be bound: the API then answers anyone who "
                   "can reach the machine. Also CITYSTACK_ALLOW_REMOTE=1.")
@click.option("--dev", is_flag=True, help="Flask's development server with reloader (loopback only).")
def serve(db, host, port, workers, connections, threads, allow_remote, dev):
    """Serve the API and the map page (gunicorn).

    It binds loopback (127.0.0.1) unless told otherwise; any other address
    needs --allow-remote, and is served with a warning.
    """
    conf = settings(db=db, host=host, port=port, workers=workers, connections=connections, threads=threads)
    if conf.server not in ("gevent", "gthread"):
        raise CliError(f"CITYSTACK_SERVER={conf.server!r}: choose gevent (the default) or gthread")
    for name in ("header_timeout", "keepalive", "heartbeat"):
        if not getattr(conf, name) > 0:
            raise CliError(f"CITYSTACK_{name.upper()} must be a number of seconds above 0")
    on_loopback = _loopback(conf.host)
    if dev and not on_loopback:
        raise CliError("--dev serves on loopback only (127.0.0.1 or ::1): the debugger must never be public")
    if not on_loopback and not allow_remote:
        raise CliError(f"--host {conf.host} is not a loopback address: anyone who can reach this machine "
                       "could use the API. Bind 127.0.0.1 behind a reverse proxy, or give --allow-remote "
                       "to serve it as it is")
    _check_page_policy(conf)
    store = _store(conf.db)  # fail here, with a message, rather than in every worker
    store.close()
    from ..app import create_app

    if dev:
        # The Werkzeug debugger, with the reloader: only here, and only on loopback.
        create_app(conf).run(host=conf.host, port=conf.port, debug=on_loopback, use_reloader=True, threaded=True)
        return
    from .server import run

    if not on_loopback:
        _warn_remote(conf)
    model = (f"{conf.connections} connections" if conf.server == "gevent" else f"{conf.threads} threads")
    if threads is not None and conf.server == "gevent":
        click.echo("citystack: --threads applies to CITYSTACK_SERVER=gthread only; "
                   "the gevent worker takes --connections", err=True)
    click.echo(f"citystack serving {conf.db} on http://{_url_host(conf.host)}:{conf.port} "
               f"({conf.workers} {conf.server} worker(s) x {model})", err=True)
    run(conf)


def _warn_remote(conf: Settings) -> None:
    line = "!" * 72
    click.secho("\n".join([
        line,
        f"WARNING: citystack is listening on {conf.host}:{conf.port}, not on loopback.",
        "Anyone who can reach this machine can read every layer and run analyses.",
        "There is no authentication and no TLS: put a reverse proxy with both in front,",
        "and set CITYSTACK_BASE_URL to the address clients use.",
        line,
    ]), err=True, fg="red", bold=True)


def _check_page_policy(conf: Settings) -> None:
    """The page's Content-Security-Policy must be expressible (the tile host): say so now, not per worker."""
    from ..api.headers import policy

    try:
        policy(conf)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name")
@click.option("--layer", required=True, help="Layer to analyse.")
@click.option("--bbox", help="minlon,minlat,maxlon,maxlat (default: the layer's extent).")
@click.option("--days", help="Layers with a time (or check-ins): days of week, e.g. Sat,Sun or 5,6 (0 = Monday).")
@click.option("--hours", help="Layers with a time (or check-ins): an hour (8) or a range, e.g. 8-17, 22-4.")
@click.option("--from", "start", help="Layers with a time: from this ISO instant on (inclusive).")
@click.option("--to", "end", help="Layers with a time: before this ISO instant (exclusive).")
@click.option("--where", "where", multiple=True, metavar="FIELD=VALUE",
              help="Field filter, as in the API: FIELD=v (repeat: any of them), FIELD_not=v, FIELD_min=v, "
                   "FIELD_max=v. Repeatable.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output: .json, .geojson or .png.")
@db_option
@click.pass_context
def analyze(ctx, name, layer, bbox, days, hours, start, end, where, out, db):
    """Run an analysis and write its result; analysis parameters as --NAME VALUE."""
    from .analyze import run_analysis

    run_analysis(ctx, settings(db=db), name, layer, bbox, days, hours, out, Bar, CliError,
                 start=start, end=end, where=where)


SHOWN = 60  # characters of a value `layers` shows


def one_line(value, width: int = SHOWN) -> str:
    """A value on one line: line breaks and tabs as spaces, cut with an ellipsis after `width` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _store(db):
    from ..stores import StoreError, open_store

    conf = settings(db=db)
    try:
        return open_store(conf.db, conf)
    except StoreError as exc:
        raise CliError(str(exc)) from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":  # pragma: no cover
    main()
