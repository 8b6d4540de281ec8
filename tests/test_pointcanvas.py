"""The page's fast drawing, in a real browser (Debian's chromium through Playwright, as
tests/test_browser.py): 500,000 points fetched as Arrow (static/js/arrow.js) and written
as pixels (static/js/pointcanvas.js) land where Leaflet puts their positions; a density
image (static/js/density.js) lies where its points are. The times are printed (-s), not
asserted: measurements belong in bench/."""

from __future__ import annotations

import pytest

import pointlayers
from conftest import Server

sync_api = pytest.importorskip("playwright.sync_api")
from test_browser import browser, ARGS, CHROMIUM, Page  # noqa: F401,E402  (browser: the one launch of Chromium)

pytestmark = pytest.mark.browser

N = 500_000
WEST = (-74.00, 40.70, -73.96, 40.74)  # N - 4 points fill this box
MARKERS = [(-73.94, 40.71), (-73.93, 40.725), (-73.92, 40.735), (-73.915, 40.705)]  # alone, to the east
FILL = f"""
SELECT i AS id,
       {WEST[0]} + ((i * 7919) % 100003) / 100003.0 * {WEST[2] - WEST[0]} AS lon,
       {WEST[1]} + ((i * 104729) % 99991) / 99991.0 * {WEST[3] - WEST[1]} AS lat
FROM range({N - len(MARKERS)}) AS t(i)
UNION ALL
SELECT * FROM (VALUES {", ".join(f"({N + k}, {lon}, {lat})" for k, (lon, lat) in enumerate(MARKERS))})
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("many") / "many.duckdb"
    sql = FILL.strip()
    pointlayers.build(str(db), {"many": (f"SELECT CAST(id AS BIGINT) AS id, CAST(lon AS DOUBLE) AS lon, "
                                         f"CAST(lat AS DOUBLE) AS lat FROM ({sql})", [])})
    srv = Server(db)
    yield srv
    srv.stop()


@pytest.fixture
def web(browser, server):
    page = Page(browser, server)
    page.open()
    yield page
    page.close()


DRAW = """async ([markers, west]) => {
  const t0 = performance.now();
  const {fetchArrow} = await import('/static/js/arrow.js');
  const {PointCanvas, packColour} = await import('/static/js/pointcanvas.js');
  const data = await fetchArrow('/api/layers/many/features', {limit: 500000});
  const t1 = performance.now();
  const layer = new PointCanvas({id: 'arrow-canvas'}).addTo(citystack.map);
  let drawn = null;
  layer.on('drawn', (e) => (drawn = e));
  layer.setData(data, packColour('#ff0000'), 1.5);
  const t2 = performance.now();
  const map = citystack.map;
  const canvas = document.getElementById('arrow-canvas');
  const ratio = canvas.width / map.getSize().x;
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  const at = (x, y) => {
    const i = (Math.floor(y * ratio) * canvas.width + Math.floor(x * ratio)) * 4;
    return Array.from(pixels.data.slice(i, i + 4));
  };
  const where = markers.map(([lon, lat]) => map.latLngToContainerPoint([lat, lon]));
  const a = map.latLngToContainerPoint([west[3], west[0]]);
  const b = map.latLngToContainerPoint([west[1], west[2]]);
  let painted = 0, total = 0;
  for (let y = Math.ceil(a.y) + 2; y < Math.floor(b.y) - 2; y++) {
    for (let x = Math.ceil(a.x) + 2; x < Math.floor(b.x) - 2; x++) { total++; if (at(x, y)[3] > 0) painted++; }
  }
  return {count: data.count, drawn, fetchMs: t1 - t0, drawMs: t2 - t1,
          markers: where.map((p) => at(p.x, p.y)),
          beside: where.flatMap((p) => [at(p.x + 5, p.y), at(p.x - 5, p.y), at(p.x, p.y + 5), at(p.x, p.y - 5)]),
          westFill: painted / total, westPixels: total};
}"""


def test_500k_points_from_arrow_land_where_leaflet_puts_them(web):
    page = web.page
    page.evaluate("(b) => citystack.fitBounds(b)", [WEST[0], WEST[1], MARKERS[2][0] + 0.01, WEST[3]])
    web.wait_idle()
    got = page.evaluate(DRAW, [MARKERS, list(WEST)])
    print(f"\n500,000 points: Arrow fetch + decode {got['fetchMs']:.0f} ms, pixels drawn in {got['drawn']['ms']:.0f} ms "
          f"(setData incl. projection {got['drawMs']:.0f} ms)")
    assert got["count"] == N and got["drawn"]["count"] == N
    assert all(p == [255, 0, 0, 255] for p in got["markers"]), got["markers"]
    assert all(p[3] == 0 for p in got["beside"]), got["beside"]  # 5 px away from a lone point: nothing
    assert got["westPixels"] > 10_000 and got["westFill"] > 0.95  # 500,000 points fill their box
    assert not web.errors and not web.violations()


DENSITY = """async () => {
  const {DensityLayer, densityLegend} = await import('/static/js/density.js');
  const layer = new DensityLayer({id: 'density-canvas'}).addTo(citystack.map);
  const image = await layer.show('many');
  const legend = document.createElement('div');
  densityLegend(legend, image);
  const map = citystack.map;
  const canvas = document.getElementById('density-canvas');
  const ratio = canvas.width / map.getSize().x;
  const ctx = canvas.getContext('2d');
  const alpha = ([lon, lat]) => {  // the most opaque pixel of the 5 x 5 around a place
    const p = map.latLngToContainerPoint([lat, lon]);
    const d = ctx.getImageData(Math.floor(p.x * ratio) - 2, Math.floor(p.y * ratio) - 2, 5, 5).data;
    let most = 0;
    for (let i = 3; i < d.length; i += 4) most = Math.max(most, d[i]);
    return most;
  };
  const before = {inside: alpha([-73.98, 40.72]), empty: alpha([-73.95, 40.738])};
  // A newer request aborts the one before; the image kept moves with the map until a new one comes.
  const first = layer.show('many').then(() => 'drawn', (e) => e.name);
  await layer.show('many');
  const superseded = await first;
  map.panBy([150, 40], {animate: false});
  const moved = {inside: alpha([-73.98, 40.72]), edge: alpha([-73.962, 40.72]), outside: alpha([-73.955, 40.72])};
  return {total: image.total, width: image.width, height: image.height, size: map.getSize(), ...before,
          superseded, moved, legend: legend.dataset.density};
}"""


def test_density_image_lies_over_its_points(web):
    page = web.page
    page.evaluate("(b) => citystack.fitBounds(b)", [WEST[0], WEST[1], MARKERS[2][0] + 0.01, WEST[3]])
    web.wait_idle()
    got = page.evaluate(DENSITY)
    assert got["total"] == N and (got["width"], got["height"]) == (got["size"]["x"], got["size"]["y"])
    assert got["inside"] > 0 and got["empty"] == 0
    assert got["superseded"] == "AbortError"
    # After the pan the image is drawn where its points now are: the box's east edge moved with it.
    assert got["moved"]["inside"] > 0 and got["moved"]["edge"] > 0 and got["moved"]["outside"] == 0
    assert got["legend"] == str(N)
    assert not web.errors and not web.violations()
