"""The CLI as a user meets it: layers, analyze, and its refusals."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from click.testing import CliRunner
from PIL import Image

from citystack.cli.commands import main
from conftest import citystack


def citystack_each(*commands, check=True):
    """Independent commands run side by side: each process starts Python and imports
    the analyses (scikit-learn, networkx), seconds of CPU before it does anything."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: citystack(*args, check=check), commands))


def test_layers_lists_counts_fields_and_extent(duckdb_db):
    out = citystack("layers", "--db", duckdb_db).stdout
    assert "listings  (points, 20000 rows" in out and "price" in out and "extent 11" in out
    layers = json.loads(citystack("layers", "--json", "--db", duckdb_db).stdout)
    assert {"listings", "checkins", "checkins_places"} <= {layer["name"] for layer in layers}


def test_analyze_writes_json_geojson_and_png(duckdb_db, tmp_path):
    bbox = "114.03,22.52,114.09,22.57"
    heat, *_ = citystack_each(
        ("analyze", "heatmap", "--layer", "listings", "--bbox", bbox, "--bandwidth", "250", "--cells=50",
         "--out", tmp_path / "h.json", "--db", duckdb_db),
        ("analyze", "network", "--layer", "checkins", "--min-shared", "4", "--out", tmp_path / "n.geojson",
         "--db", duckdb_db),
        ("analyze", "clusters", "--layer", "listings", "--bbox", bbox, "--method", "kmeans", "--k", "4",
         "--out", tmp_path / "c.png", "--db", duckdb_db))
    assert "wrote" in heat.stdout
    result = json.loads((tmp_path / "h.json").read_text())
    assert result["params"]["bandwidth"] == 250 and max(result["grid"]["nx"], result["grid"]["ny"]) == 50
    fc = json.loads((tmp_path / "n.geojson").read_text())
    kinds = {f["geometry"]["type"] for f in fc["features"]}
    assert fc["type"] == "FeatureCollection" and kinds == {"Point", "LineString"}
    image = Image.open(tmp_path / "c.png")
    assert image.format == "PNG" and image.width == 1000 and len(image.convert("RGB").getcolors(1 << 20)) > 5


def test_analyze_refuses_bad_parameters(duckdb_db, tmp_path):
    cases = [
        (["heatmap", "--bandwidth", "2"], "--bandwidth: must be at least 10"),
        (["heatmap", "--bandwidht", "200"], "has no parameter 'bandwidht'"),
        (["interpolate", "--model", "magic"], "--model: expected one of"),
        (["network"], "checkins layers"),
        (["heatmap", "--bbox", "1,2"], "--bbox"),
    ]
    common = ["--layer", "listings", "--out", str(tmp_path / "x.json"), "--db", str(duckdb_db)]
    # The first through a process, as a user meets it; the others through the same command
    # in this process (click's runner), where a process would only add seconds of imports.
    (args, says), *others = cases
    proc = citystack("analyze", *args, *common, check=False)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    for args, says in others:
        result = CliRunner().invoke(main, ["analyze", *args, *common])
        assert result.exit_code == 2 and says in result.stderr, (result.stderr, result.exception)
        assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert not (tmp_path / "x.json").exists()


def test_serve_refuses_dev_debugger_off_loopback(duckdb_db):
    proc = citystack("serve", "--dev", "--host", "0.0.0.0", "--db", duckdb_db, check=False)
    assert proc.returncode == 2 and "loopback" in proc.stderr


def test_serve_and_layers_explain_a_missing_database(tmp_path):
    for args in (["serve"], ["layers"]):
        proc = citystack(*args, "--db", tmp_path / "none.duckdb", check=False)
        assert proc.returncode == 2 and "citystack init --sample" in proc.stderr


def test_init_keeps_an_existing_database(duckdb_db):
    proc = citystack("init", "--db", duckdb_db, check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr


def test_serve_stops_cleanly(duckdb_db):
    """SIGTERM after real work: exit 0 and nothing on the console but the start line
    (no traceback, no leak report from DuckDB's bindings at interpreter exit)."""
    import requests

    from conftest import Server

    server = Server(duckdb_db, "--workers", "2")
    try:
        for _ in range(6):
            r = requests.get(server.url + "/api/layers/listings/features",
                             params={"bbox": "114.0,22.5,114.1,22.6", "limit": 50}, timeout=30)
            assert r.status_code == 200
        server.proc.terminate()
        assert server.proc.wait(15) == 0
        lines = [line for line in server.output().splitlines() if line.strip()]
    finally:
        server.stop()
    assert len(lines) == 1 and lines[0].startswith("citystack serving"), lines
