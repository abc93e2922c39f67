"""README screenshots from a real trained run, not a 2-epoch toy: ``make screenshots``.

Prepares (once; reused on later calls) a showcase store under ``artifacts/showcase/``: the quality
bench's standard set (200 train + 110 test plots per class, team style, seed 0), a VAE + classifier
run and a visual_cnn run trained on it with the quality bench's recipe (``bench/quality.py``:
96 px, 30 epochs), and an evaluation of the visual_cnn run on a varied-style set it never saw. Then it
starts the real dashboard on that store, opens every page in headless Chromium (Debian's
``chromium``), uploads a PNG and a CSV on Predict and writes one full-page screenshot per page.

Everything goes through the product's own commands (``python -m backend generate|train|evaluate``),
so the pictures show what a user would see. Training takes about 10 minutes on a quiet 2-core CPU.

    python bench/screenshots.py                       # prepare if needed, then docs/screenshots/*.png
    python bench/screenshots.py --prepare-only
    python bench/screenshots.py --home /tmp/showcase  # another showcase folder
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 1000}
PAGE_MS = 180_000

# The quality bench's recipe (bench/quality.py defaults) for the run the screenshots show.
STANDARD = ["--train-per-class", "200", "--test-per-class", "110", "--seed", "0"]
VARIED = ["--train-per-class", "3", "--test-per-class", "40", "--seed", "7", "--style", "varied"]
RUNS = [
    ["--model", "vae_classifier", "--image-size", "64", "--epochs", "12", "--name", "vae 64px"],
    ["--model", "visual_cnn", "--image-size", "96", "--epochs", "30", "--batch-size", "32", "--name", "visual_cnn 96px (quality recipe)"],
]  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=REPO / "artifacts" / "showcase",
                        help="showcase store, data and artifacts (reused when it holds completed runs)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--prepare-only", action="store_true", help="train the showcase runs, take no screenshots")
    return parser.parse_args()


def showcase_env(home: Path) -> dict[str, str]:
    return {
        "RUNS_DB_URL": f"sqlite:///{home / 'runs.db'}",
        "DATA_DIR": str(home / "data"),
        "ARTIFACTS_DIR": str(home / "artifacts"),
        "MPLBACKEND": "Agg",
    }


def backend(env: dict[str, str], *args: str) -> str:
    """Run ``python -m backend ARGS`` on the showcase store; its output, or exit with its message."""
    print("$ python -m backend", " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "backend", *args], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"`python -m backend {' '.join(args)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def completed_runs(env: dict[str, str]) -> list[dict]:
    listing = json.loads(backend(env, "runs", "list", "--json") or "[]")
    return [run for run in listing if run.get("status") == "completed"]


def prepare(home: Path) -> dict[str, str]:
    """Generate the two datasets and train the showcase runs unless they are already there."""
    env = showcase_env(home)
    data = home / "data"
    if not (data / "standard" / "manifest.json").is_file():
        backend(env, "generate", "--out", str(data / "standard"), *STANDARD)
    if not (data / "varied" / "manifest.json").is_file():
        backend(env, "generate", "--out", str(data / "varied"), *VARIED)
    done = {run.get("name") for run in completed_runs(env)}
    for options in RUNS:
        name = options[options.index("--name") + 1]
        if name not in done:
            started = time.perf_counter()
            backend(env, "train", "--data", str(data / "standard"), *options)
            print(f"  trained {name!r} in {time.perf_counter() - started:.0f} s", flush=True)
    best = max(completed_runs(env), key=lambda run: run["id"])
    marker = home / f"evaluated_run{best['id']}_on_varied"
    if not marker.is_file():
        backend(env, "evaluate", "--run", str(best["id"]), "--data", str(data / "varied"))
        marker.touch()
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard(env: dict[str, str], log_path: Path):
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "Home.py"),
             "--server.port", str(port), "--server.headless", "true"],
            cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the dashboard did not start; see {log_path}")
                time.sleep(0.3)
            yield base
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def wait_idle(page, quiet_checks: int = 4) -> None:
    quiet, deadline = 0, time.monotonic() + PAGE_MS / 1000
    while quiet < quiet_checks and time.monotonic() < deadline:
        time.sleep(0.5)
        quiet = quiet + 1 if page.locator("[data-testid='stStatusWidget']").count() == 0 else 0


def full_page(page, path: Path) -> None:
    """Grow the viewport to the main element's scroll height (Streamlit scrolls inside it), then shoot."""
    measure = "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain]')].map(e => e.scrollHeight))"
    height = 0
    for _ in range(5):
        new_height = int(page.evaluate(measure))
        if new_height == height:
            break
        height = new_height
        page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
        wait_idle(page, quiet_checks=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", flush=True)


def shoot(env: dict[str, str], home: Path, out: Path) -> None:
    if not CHROMIUM.is_file():
        sys.exit(f"{CHROMIUM} not found: run .ci/system-deps.sh (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    varied = home / "data" / "varied"
    upload = [sorted((varied / "test" / "mean_shift").glob("*.png"))[0],
              sorted((varied / "csv" / "test" / "point_anomaly").glob("*.csv"))[0]]  # fmt: skip
    pages = [("Home", "home"), ("Data", "data"), ("Train", "train"), ("Compare", "compare"),
             ("Class metrics", "class_metrics"), ("Predict", "predict")]  # fmt: skip
    with dashboard(env, home / "server.log") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(PAGE_MS)
        page.goto(base)
        wait_idle(page)
        for title, name in pages:
            page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
            wait_idle(page)
            if name == "predict":
                page.locator("input[type='file']").first.set_input_files([str(p) for p in upload])
                wait_idle(page, quiet_checks=6)
            full_page(page, out / f"{name}.png")
        browser.close()


def main() -> int:
    args = parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    env = prepare(args.home.resolve())
    if not args.prepare_only:
        shoot(env, args.home.resolve(), args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
