"""Take the README's screenshot of the filter panel: `python docs/screenshots.py`.

Loads AB_NYC_2019.csv (../shared/data) into a throwaway database, serves it, and in
headless Chromium (/usr/bin/chromium; map tiles blocked, so the map is plain) chooses
the layer, brushes a price range, ticks two neighbourhood groups, and saves
docs/filters.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import AIRBNB, Server, citystack  # noqa: E402
from test_browser import ARGS, CHROMIUM, Page  # noqa: E402
from test_filters_browser import choose, drag, settle  # noqa: E402


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "shots.duckdb"
        citystack("init", "--sample", "--db", db)
        citystack("load", AIRBNB, "--layer", "nyc", "--preset", "airbnb", "--db", db)
        srv = Server(db)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                web = Page(browser, srv, width=1280, height=900)
                page = web.open()
                choose(page, "nyc")
                page.evaluate("citystack.fitBounds([-74.03, 40.66, -73.90, 40.80])")
                settle(page)
                drag(page, "price", "bins", 0.06, 0.16)
                for group in ("Manhattan", "Brooklyn"):
                    page.locator(f"#filters li[data-value=\"{group}\"] input").check()
                settle(page)
                page.locator("#filters").scroll_into_view_if_needed()
                page.screenshot(path=str(ROOT / "docs" / "filters.png"))
                browser.close()
        finally:
            srv.stop()
    print("wrote docs/filters.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
