"""HTTP hygiene: security headers on every answer, Allow on 405, links that
never come from the Host header, request limits, and `serve` refusing a
public bind unless told. In-process (Flask's test client) where a server
process adds nothing; through `citystack serve` where it does."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser

import pytest
import requests
from click.testing import CliRunner

from citystack.settings import Settings

HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
BBOX = "114.0,22.5,114.1,22.6"


class FailingStore:
    """The sample store, but listing layers fails as a database fault would."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def layers(self):
        raise RuntimeError("disk I/O error in table layer_listings")


def make_app(db, store=None, **settings):
    from citystack.app import create_app
    from citystack.stores import open_store

    conf = Settings.from_env({}, db=str(db), **settings)
    store = store or open_store(conf.db, conf)
    return create_app(conf, store), store


@pytest.fixture(scope="module")
def app(duckdb_db):
    app, store = make_app(duckdb_db)
    yield app
    store.close()


@pytest.fixture
def client(app):
    return app.test_client()


def csp(response) -> dict[str, list[str]]:
    out = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def assert_secure(response, what):
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (what, name, dict(response.headers))
    policy = csp(response)
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"], what
    assert policy["connect-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"], what
    assert policy["default-src"] == ["'none'"], what
    assert not any("unsafe" in s for sources in policy.values() for s in sources), what


# ---- security headers ----

def test_every_kind_of_answer_has_the_security_headers(client, duckdb_db):
    answers = {
        "page": client.get("/"),
        "json": client.get("/api/layers"),
        "geojson": client.get("/api/layers/listings/features", query_string={"bbox": BBOX, "limit": 5}),
        "csv": client.get("/api/layers/listings/features", query_string={"limit": 5, "format": "csv"}),
        "static": client.get("/static/js/main.js"),
        "400": client.get("/api/layers/listings/features", query_string={"limit": "many"}),
        "404": client.get("/api/layers/atlantis"),
        "404 route": client.get("/no/such/route"),
        "405": client.post("/api/layers"),
        "options": client.options("/api/layers"),
        "head": client.head("/api/layers"),
        "414": client.get("/api/layers", query_string={"x": "a" * 10_000}),
        "progress stream": client.get("/api/layers/listings/features", query_string={"bbox": BBOX, "limit": 5},
                                      headers={"Accept": "text/event-stream"}),
    }
    expected = {"page": 200, "json": 200, "geojson": 200, "csv": 200, "static": 200, "400": 400, "404": 404,
                "404 route": 404, "405": 405, "options": 200, "head": 200, "414": 414, "progress stream": 200}
    for what, response in answers.items():
        assert response.status_code == expected[what], (what, response.status_code, response.data[:200])
        assert_secure(response, what)
    assert answers["progress stream"].mimetype == "text/event-stream"
    # a 500 too
    app, _ = make_app(duckdb_db, FailingStore(client.application.extensions["citystack"].store))
    failed = app.test_client().get("/api/layers")
    assert failed.status_code == 500 and "disk I/O" not in failed.text
    assert_secure(failed, "500")


def test_csv_is_a_file_even_when_a_stream_is_asked_for(client):
    plain = client.get("/api/layers/listings/features", query_string={"bbox": BBOX, "limit": 7, "format": "csv"})
    asked = client.get("/api/layers/listings/features", query_string={"bbox": BBOX, "limit": 7, "format": "csv"},
                       headers={"Accept": "text/event-stream"})
    assert asked.status_code == 200 and asked.mimetype == "text/csv" and asked.data == plain.data
    assert len(asked.text.splitlines()) == 1 + 7


def test_the_2015_event_stream_has_the_security_headers(client):
    response = client.get("/eventSource/", buffered=False)
    try:
        assert response.status_code == 200 and response.mimetype == "text/event-stream"
        assert_secure(response, "2015 stream")
    finally:
        response.close()


def test_images_come_from_the_app_data_and_the_tile_host_only(duckdb_db):
    app, store = make_app(duckdb_db, tile_url="https://{s}.tiles.example.net:8443/{z}/{x}/{y}.png")
    try:
        policy = csp(app.test_client().get("/"))
        assert policy["img-src"] == ["'self'", "data:", "https://*.tiles.example.net:8443"]
    finally:
        store.close()
    app, store = make_app(duckdb_db, tile_url="/tiles/{z}/{x}/{y}.png")  # the app's own tiles
    try:
        assert csp(app.test_client().get("/"))["img-src"] == ["'self'", "data:"]
    finally:
        store.close()


def test_default_policy_allows_the_default_tiles(client):
    from citystack.settings import OSM_TILES

    host = re.match(r"https://[^/]+", OSM_TILES).group(0)
    assert csp(client.get("/"))["img-src"] == ["'self'", "data:", host]


def test_a_tile_host_the_policy_cannot_name_is_refused(duckdb_db):
    from citystack.app import create_app

    with pytest.raises(ValueError, match="CITYSTACK_TILE_URL"):
        create_app(Settings.from_env({}, db=str(duckdb_db), tile_url="https://x.org;script-src *"))


class _Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.styles, self.inline_styles, self.handlers = [], 0, [], []
        self._in_script = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._in_script = {"attrs": attrs, "text": ""}
            self.scripts.append(self._in_script)
        if tag == "style":
            self.styles += 1
        if "style" in attrs:
            self.inline_styles.append(tag)
        self.handlers += [f"{tag}.{name}" for name in attrs if name.startswith("on")]
        if any(str(v).strip().lower().startswith("javascript:") for v in attrs.values()):
            self.handlers.append(f"{tag} javascript: URL")

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script["text"] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def test_page_has_nothing_inline_the_policy_would_block(client):
    markup = _Markup()
    markup.feed(client.get("/").text)
    assert markup.styles == 0 and markup.inline_styles == [] and markup.handlers == []
    for script in markup.scripts:
        if "src" in script["attrs"]:
            assert script["attrs"]["src"].startswith("/static/") and not script["text"].strip()
        else:  # data, not code: the page's config
            assert script["attrs"].get("type") == "application/json", script


# ---- 405 ----

def test_405_says_what_is_allowed(client):
    for method in ("post", "put", "delete", "patch"):
        response = getattr(client, method)("/api/layers/listings/features")
        assert response.status_code == 405, method
        allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert "GET" in allowed and method.upper() not in allowed
        assert set(response.get_json()) >= {"error", "detail"}


def test_405_through_the_server(server):
    response = requests.post(server.url + "/api/layers", timeout=30)
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
    assert response.json()["error"] and response.headers["X-Frame-Options"] == "DENY"


# ---- links ----

def linked(client, headers=None) -> dict[str, str]:
    doc = client.get("/api/openapi.json", headers=headers).get_json()
    layer = client.get("/api/layers/listings", headers=headers).get_json()
    page = client.get("/api/layers/listings/features", query_string={"bbox": BBOX, "limit": 3},
                      headers=headers).get_json()
    out = {"servers": doc["servers"][0]["url"], "next": page["links"][0]["href"]}
    out |= {link["rel"]: link["href"] for link in layer["links"]}
    return out


def test_links_are_relative_whatever_the_host_header(client):
    links = linked(client, FORGED)
    assert links == linked(client)
    assert links["servers"] == "/"
    assert links["items"] == "/api/layers/listings/features" and links["bins"] == "/api/layers/listings/bins"
    assert links["next"] == "/api/layers/listings/features?bbox=114.0%2C22.5%2C114.1%2C22.6&limit=3&offset=3"
    assert not any("evil" in href or "localhost" in href for href in links.values())


def test_links_start_with_the_configured_base_url(duckdb_db):
    base = "https://maps.example.org/citystack"
    app, store = make_app(duckdb_db, base_url=base + "/")
    try:
        links = linked(app.test_client(), FORGED)
    finally:
        store.close()
    assert links["servers"] == base
    assert links["items"] == base + "/api/layers/listings/features"
    assert links["next"].startswith(base + "/api/layers/listings/features?") and links["next"].endswith("&offset=3")


def test_next_link_pages_on(client):
    first = client.get("/api/layers/listings/features", query_string={"bbox": BBOX, "limit": 50}).get_json()
    second = client.get(first["links"][0]["href"]).get_json()
    assert second["numberReturned"] == 50
    assert not {f["id"] for f in first["features"]} & {f["id"] for f in second["features"]}


def test_forged_host_through_the_server(server):
    response = requests.get(server.url + "/api/layers/listings/features", headers=FORGED,
                            params={"bbox": BBOX, "limit": 3}, timeout=30)
    assert response.json()["links"][0]["href"].startswith("/api/layers/listings/features?")
    doc = requests.get(server.url + "/api/openapi.json", headers=FORGED, timeout=30).json()
    assert doc["servers"] == [{"url": "/"}]


@pytest.mark.parametrize("bad", ["ftp://example.org", "example.org/citystack", "https://", "https://x.org/a?b=1",
                                 "https://x.org/#top"])
def test_base_url_must_be_a_plain_http_url(bad):
    with pytest.raises(ValueError, match="CITYSTACK_BASE_URL"):
        Settings.from_env({"CITYSTACK_BASE_URL": bad})


# ---- request limits ----

def test_a_long_query_string_is_a_json_414(client):
    response = client.get("/api/layers/listings/features?bbox=" + "1," * 5_000_000)  # 10 MB
    assert response.status_code == 414
    body = response.get_json()
    assert set(body) == {"error", "detail"} and "CITYSTACK_MAX_URL_LENGTH" in body["detail"]
    assert client.get("/api/layers/listings/features", query_string={"bbox": BBOX, "x": "a" * 3000}).status_code == 400


def test_large_headers_are_a_json_431(client):
    response = client.get("/api/layers", headers={f"X-Pad-{i}": "a" * 1000 for i in range(20)})
    assert response.status_code == 431 and set(response.get_json()) == {"error", "detail"}
    assert client.get("/api/layers", headers={"X-Pad": "a" * 1000}).status_code == 200


# ---- serve ----

@pytest.fixture
def fake_run(monkeypatch):
    """`serve` up to the point where it would start gunicorn: the settings it would start it with."""
    started = []
    monkeypatch.setattr("citystack.cli.server.run", started.append)
    return started


def serve(db, *args, env=None):
    from citystack.cli.commands import main

    return CliRunner().invoke(main, ["serve", "--db", str(db), *args], env=env or {})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org"])
def test_serve_refuses_a_public_bind_without_allow_remote(duckdb_db, fake_run, host):
    result = serve(duckdb_db, "--host", host)
    assert result.exit_code == 2 and "--allow-remote" in result.output and "loopback" in result.output
    assert fake_run == []


def test_serve_binds_a_public_address_with_a_warning_when_allowed(duckdb_db, fake_run):
    result = serve(duckdb_db, "--host", "0.0.0.0", "--allow-remote")
    assert result.exit_code == 0, result.output
    assert [conf.host for conf in fake_run] == ["0.0.0.0"]
    assert "WARNING" in result.output and "0.0.0.0" in result.output and "no authentication" in result.output
    result = serve(duckdb_db, "--host", "0.0.0.0", env={"CITYSTACK_ALLOW_REMOTE": "1"})
    assert result.exit_code == 0 and "WARNING" in result.output


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_serve_binds_loopback_quietly(duckdb_db, fake_run, host):
    result = serve(duckdb_db, "--host", host)
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.output and [conf.host for conf in fake_run] == [host]


def test_serve_dev_stays_on_loopback_even_when_remote_is_allowed(duckdb_db, fake_run):
    result = serve(duckdb_db, "--dev", "--host", "0.0.0.0", "--allow-remote")
    assert result.exit_code == 2 and "loopback only" in result.output


def test_serve_says_when_the_tile_host_cannot_be_allowed(duckdb_db, fake_run):
    result = serve(duckdb_db, env={"CITYSTACK_TILE_URL": "https://a b.org/{z}/{x}/{y}.png"})
    assert result.exit_code == 2 and "CITYSTACK_TILE_URL" in result.output and fake_run == []


def test_serve_uses_the_machine_by_default(duckdb_db, fake_run):
    cores = len(os.sched_getaffinity(0))
    assert serve(duckdb_db).exit_code == 0
    assert serve(duckdb_db, "--workers", "3").exit_code == 0
    assert serve(duckdb_db, env={"CITYSTACK_WORKERS": "1"}).exit_code == 0
    assert [conf.workers for conf in fake_run] == [min(cores, 8), 3, 1]
