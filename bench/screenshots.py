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
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fixtures import browser  # noqa: E402  (the browser tests' server and Chromium helpers)

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


def wait_idle(page, quiet_checks: int = 4) -> None:
    browser.wait_idle(page, PAGE_MS / 1000, quiet_checks)


def full_page(page, path: Path) -> None:
    browser.full_page_screenshot(page, path, PAGE_MS / 1000)
    print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", flush=True)


def shoot(env: dict[str, str], home: Path, out: Path) -> None:
    varied = home / "data" / "varied"
    upload = [sorted((varied / "test" / "mean_shift").glob("*.png"))[0],
              sorted((varied / "csv" / "test" / "point_anomaly").glob("*.csv"))[0]]  # fmt: skip
    # (sidebar link, file name, the page's own title): the title is waited for after the click, since
    # the script may not have started rerunning when the first idle check looks (a blank train.png)
    pages = [("Home", "home", "Anomaly Workbench"), ("Data", "data", "Data"), ("Train", "train", "Train"),
             ("Compare", "compare", "Compare runs"), ("Class metrics", "class_metrics", "Class metrics"),
             ("Predict", "predict", "Predict")]  # fmt: skip
    try:
        browser.find_chromium()  # before the server starts
        with browser.dashboard_server(env, home / "server.log") as base, browser.chromium_page(PAGE_MS) as page:
            page.goto(base)
            wait_idle(page)
            for link, name, title in pages:
                page.locator("[data-testid='stSidebarNav'] a", has_text=link).first.click()
                page.locator("h1", has_text=title).first.wait_for(timeout=PAGE_MS)
                wait_idle(page)
                if name == "predict":
                    page.locator("input[type='file']").first.set_input_files([str(p) for p in upload])
                    # files are answered one by one between reruns: idle alone can catch it half-way;
                    # the caption under Results is written once every file has its answer
                    done = f"of {len(upload)} file(s) predicted with run"
                    page.get_by_text(done).first.wait_for(timeout=PAGE_MS)
                    wait_idle(page, quiet_checks=6)
                full_page(page, out / f"{name}.png")
    except browser.BrowserUnavailable as error:
        sys.exit(str(error))


def main() -> int:
    args = parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    env = prepare(args.home.resolve())
    if not args.prepare_only:
        shoot(env, args.home.resolve(), args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
