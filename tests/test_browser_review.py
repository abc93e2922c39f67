"""The click-through confusion matrix in a real browser: a click on a cell of the Altair heatmap in
headless Chromium reruns the page with that cell's files (AppTest only sets the selection state; this
checks that the chart really sends it). A planted run on real PNGs, no training: about half a minute.

Needs Debian's ``chromium`` at /usr/bin/chromium, like tests/test_browser.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from backend import lineage, store
from tests.fixtures.comparison import CLASSES
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, SERVER_START_S, VIEWPORT, free_port
from tests.test_review import matrix_of, per_class_rows, prediction_rows, write_dataset

pytestmark = pytest.mark.browser

CELL = 44  # px: charts.confusion_chart's default cell size
PADDING = 5  # px: Vega's default padding around the plot


@pytest.fixture
def planted_server(tmp_path):
    """A store with one completed run on real PNGs (two mean_shift files predicted as point_anomaly)
    and the dashboard serving it on a free port."""
    env = {
        "RUNS_DB_URL": f"sqlite:///{tmp_path / 'runs.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }
    own = tmp_path / "data" / "own"
    files = write_dataset(own, seed=1)
    url = env["RUNS_DB_URL"]
    run_id = store.create_run(
        name="planted", model="visual_cnn", config={}, dataset=str(own), status="completed", class_names=CLASSES,
        url=url,
    )  # fmt: skip
    store.update_run(run_id, best_val_f1=0.5, dataset_fingerprint=lineage.dataset_fingerprint(own), url=url)
    rows = prediction_rows(own, files, wrong={0, 1, 5})
    store.save_predictions(run_id, rows, url=url)
    store.save_class_metrics(run_id, per_class_rows(), url=url)
    store.save_confusion(run_id, matrix_of(rows), CLASSES, url=url)

    port = free_port()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "dashboard" / "Home.py"),
         "--server.port", str(port), "--server.headless", "true"],
        cwd=REPO_ROOT, env={**os.environ, **env, "MPLBACKEND": "Agg"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the dashboard server did not start; its log:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.3)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        log.close()


def gallery_files(page) -> list[str]:
    """The file names the gallery under the matrix shows (first line of each image's text)."""
    texts = page.locator("[data-testid='stMarkdownContainer']").all_inner_texts()
    return sorted(t.split("\n")[0].strip() for t in texts if ".png" in t.split("\n")[0])


@pytest.mark.timeout(300)
def test_a_click_on_a_cell_in_a_real_browser_shows_its_files(planted_server):
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{planted_server}/class_metrics")
            page.get_by_text("image(s) of", exact=False).first.wait_for(timeout=120_000)
            # Before any click: the most confused cell, mean_shift predicted as point_anomaly.
            page.get_by_text("mean_shift_1.png").wait_for()
            assert gallery_files(page) == ["mean_shift_0.png", "mean_shift_1.png"]

            chart = page.locator("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg").first
            chart.scroll_into_view_if_needed()
            box = chart.bounding_box()
            # The plot is the chart's top-right square (class labels sit left of it and below it).
            left = box["x"] + box["width"] - PADDING - CELL * len(CLASSES)
            top = box["y"] + PADDING
            row = col = CLASSES.index("trend_shift")
            page.mouse.click(left + CELL * col + CELL / 4, top + CELL * row + CELL / 4)
            page.get_by_text("trend_shift_3.png").wait_for(timeout=60_000)
            assert gallery_files(page) == [f"trend_shift_{i}.png" for i in range(4)]
            assert page.get_by_text("P(trend_shift) = 70.0%").first.is_visible()
        finally:
            browser.close()
