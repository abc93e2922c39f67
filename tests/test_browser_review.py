"""The click-through confusion matrix in a real browser: a click on a cell of the Altair heatmap in
headless Chromium reruns the page with that cell's files (AppTest only sets the selection state; this
checks that the chart really sends it). A planted run on real PNGs, no training: about half a minute.

Needs Debian's ``chromium`` at /usr/bin/chromium, like tests/test_browser.py.
"""

from __future__ import annotations

import pytest

from tests.fixtures import browser
from tests.fixtures.comparison import CLASSES
from tests.fixtures.runs import store_env
from tests.test_review import plant_run, write_dataset

pytestmark = pytest.mark.browser

CELL = 44  # px: charts.confusion_chart's default cell size
PADDING = 5  # px: Vega's default padding around the plot


@pytest.fixture
def planted_server(tmp_path):
    """A store with one completed run on real PNGs (two mean_shift files predicted as point_anomaly)
    and the dashboard serving it on a free port."""
    env = store_env(tmp_path)
    own = tmp_path / "data" / "own"
    plant_run(own, write_dataset(own, seed=1), "planted", {}, url=env["RUNS_DB_URL"])

    try:
        with browser.dashboard_server(env, tmp_path / "server.log") as base:
            yield base
    except browser.BrowserUnavailable as error:
        pytest.fail(str(error))


def gallery_files(page) -> list[str]:
    """The file names the gallery under the matrix shows (first line of each image's text)."""
    texts = page.locator("[data-testid='stMarkdownContainer']").all_inner_texts()
    return sorted(t.split("\n")[0].strip() for t in texts if ".png" in t.split("\n")[0])


@pytest.fixture
def page(planted_server):
    """A Chromium page at 1400x1000, Playwright's usual 30 s per wait."""
    try:
        with browser.chromium_page(timeout_ms=30_000) as page:
            yield page
    except browser.BrowserUnavailable as error:
        pytest.fail(str(error))


@pytest.mark.timeout(300)
def test_a_click_on_a_cell_in_a_real_browser_shows_its_files(planted_server, page):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{planted_server}/class_metrics")
    page.get_by_text("image(s) of", exact=False).first.wait_for(timeout=120_000)
    # Before any click: the most confused cell, mean_shift predicted as point_anomaly.
    page.get_by_text("mean_shift_1.png").wait_for()
    assert gallery_files(page) == ["mean_shift_0.png", "mean_shift_1.png"]

    browser.wait_idle(page, timeout_s=60)  # the script done, so the chart below is the final one
    chart = page.locator("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg").first
    row = col = CLASSES.index("trend_shift")
    # A click that lands while Vega is still attaching its listeners (seen once on a loaded machine)
    # selects nothing: click again, at most three times, each on the chart's current position.
    for attempt in range(3):
        chart.scroll_into_view_if_needed()
        box = chart.bounding_box()
        # The plot is the chart's top-right square (class labels sit left of it and below it).
        left = box["x"] + box["width"] - PADDING - CELL * len(CLASSES)
        top = box["y"] + PADDING
        page.mouse.click(left + CELL * col + CELL / 4, top + CELL * row + CELL / 4)
        try:
            page.get_by_text("trend_shift_3.png").wait_for(timeout=30_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    assert gallery_files(page) == [f"trend_shift_{i}.png" for i in range(4)]
    assert page.get_by_text("P(trend_shift) = 70.0%").first.is_visible()
