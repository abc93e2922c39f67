"""The real dashboard in headless Chromium: start ``streamlit run dashboard/Home.py`` on a free port,
visit every page, launch a tiny run from the Train page and watch the live panel (a fragment that
only refreshes in a browser) until it says completed, then upload a PNG and a CSV on Predict and see
both predictions. Saves a full-page screenshot of every page into ``$SCREENSHOT_DIR`` (a temp folder
by default; ``make screenshots`` points it at ``docs/screenshots/`` for the README).

Needs Debian's ``chromium`` at /usr/bin/chromium (``make test`` installs it: .ci/system-deps.sh): without it this test
fails rather than skips, so CI cannot pass without having driven the app.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

import pytest

from backend import store
from tests.fixtures import browser
from tests.fixtures.runs import store_env

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "awb-screenshots")
RUN_COMPLETE_MS = 300_000  # the tiny run: process start (torch import) + 2 epochs at 32 px on 2 cores
PAGE_MS = 120_000  # first visits import torch (Train) and load a checkpoint (Predict)


@pytest.fixture
def browser_env(tmp_path, monkeypatch):
    """A fresh store, data folder (a small long-tail dataset, ``demo``) and artifacts folder, used by
    the server and by this process; one VAE run trained beforehand so Compare has two models."""
    from backend.data.generate import generate_dataset
    from backend.runs.lifecycle import build_config, train_run

    env = store_env(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    demo = tmp_path / "data" / "demo"
    generate_dataset(
        demo, train_per_class=12, test_per_class=6, seed=0, imbalance="longtail:3", size=(320, 240), workers=2
    )
    result = train_run(build_config({"data": str(demo), "model": "vae_classifier", "epochs": 2, "image_size": 32,
                                     "batch_size": 16, "workers": 0, "device": "cpu"}))  # fmt: skip
    assert result.status == "completed"
    yield {**env, "demo": demo}
    stop_active_runs()


def stop_active_runs() -> None:
    """Cancel any run the test left training (its trainer lives in its own process group)."""
    from backend import runs

    for run_id in store.list_runs(status=sorted(store.ACTIVE))["id"]:
        with contextlib.suppress(Exception):
            runs.cancel(int(run_id), grace=5)


@pytest.fixture
def server(browser_env, tmp_path):
    """The real server on a free local port; killed (whole process group) however the test ends."""
    env = {k: v for k, v in browser_env.items() if k != "demo"}
    try:
        with browser.dashboard_server(env, tmp_path / "server.log") as base:
            yield base
    except browser.BrowserUnavailable as error:
        pytest.fail(str(error))


@pytest.fixture
def page(server):
    """A Chromium page (Debian's chromium driven by Playwright) at 1400x1000."""
    try:
        with browser.chromium_page(PAGE_MS) as page:
            yield page
    except browser.BrowserUnavailable as error:
        pytest.fail(str(error))


def wait_idle(page, quiet_checks: int = 3) -> None:
    browser.wait_idle(page, PAGE_MS / 1000, quiet_checks)


def visit(page, title: str, heading: str) -> None:
    """Click a sidebar link and wait for the page's title and for its script to finish."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.get_by_role("heading", name=heading, level=1).wait_for()
    wait_idle(page)


def screenshot(page, name: str) -> None:
    browser.full_page_screenshot(page, SCREENSHOTS / f"{name}.png", PAGE_MS / 1000)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label``."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


@pytest.mark.timeout(900)
def test_dashboard_in_a_real_browser(page, server, browser_env):
    page.goto(server)
    page.get_by_role("heading", name="Anomaly Workbench", level=1).wait_for()
    wait_idle(page)
    runs_metric = page.locator("[data-testid='stMetric']", has_text="Runs")
    assert runs_metric.locator("[data-testid='stMetricValue']").inner_text().strip() == "1"

    visit(page, "Data", "Data")
    page.get_by_text("Images per class", exact=True).wait_for()

    # Train: launch a tiny visual_cnn run and watch the live panel until it completes.
    visit(page, "Train", "Train")
    choose(page, "Model", "visual_cnn")
    wait_idle(page)
    set_number(page, "image size", 32)
    set_number(page, "epochs", 2)
    set_number(page, "batch size", 16)
    page.get_by_role("button", name="Launch run").click()
    launched = page.get_by_text(re.compile(r"Run #\d+ launched"))
    launched.wait_for()
    run_id = int(re.search(r"#(\d+)", launched.inner_text()).group(1))
    card = page.locator(f".st-key-run_card_{run_id}")
    card.get_by_text(re.compile(r"epoch 2 of 2, best macro-F1")).wait_for(timeout=RUN_COMPLETE_MS)
    assert card.get_by_text(re.compile(r"completed$")).is_visible()  # the status badge
    assert store.get_run(run_id).status == "completed"
    wait_idle(page)
    screenshot(page, "train")

    visit(page, "Compare", "Compare runs")
    page.get_by_text("Test metrics of the selected checkpoint", exact=True).wait_for()
    screenshot(page, "compare")

    visit(page, "Class metrics", "Class metrics")
    page.get_by_text("Confusion matrix", exact=True).wait_for()
    screenshot(page, "class_metrics")

    # Predict with the run just trained (the newest completed run is preselected).
    visit(page, "Predict", "Predict")
    demo = browser_env["demo"]
    png = sorted((demo / "test" / "mean_shift").glob("*.png"))[0]
    csv = sorted((demo / "csv" / "test" / "volatility").glob("*.csv"))[0]
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files([str(png), str(csv)])
    page.get_by_text("2 of 2 file(s) predicted").wait_for()
    wait_idle(page)
    for position, name in enumerate((png.name, csv.name)):
        card = page.locator(f".st-key-prediction_{position}")
        assert name in card.inner_text()
        # A certain answer is a "Predicted" headline; an uncertain one (a 2-epoch model) a "Best guess" line.
        headline = card.locator("[data-testid='stMetric']", has_text="Predicted")
        assert headline.count() == 1 or card.get_by_text("Best guess:").count() == 1, card.inner_text()
        assert card.locator("[data-testid='stImage']").count() >= 1  # the plot (drawn from the CSV for the CSV)
    screenshot(page, "predict")

    visit(page, "Data", "Data")
    page.get_by_text("Images per class", exact=True).wait_for()
    screenshot(page, "data")
    visit(page, "Home", "Anomaly Workbench")
    screenshot(page, "home")
