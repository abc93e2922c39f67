"""Plot-area finder versions side by side: how often each finds the true axes, and how fast.

Two families of plots whose true axes box is known:

- ``varied``: the test split of a generated dataset (``--data``, style ``mixed`` or ``varied``); the
  manifest records each plot's axes box (``plot_area``) and its theme. Without ``--data`` a small
  varied set is generated into a temporary folder (``python -m backend generate``).
- ``other tools``: plain-matplotlib plots in styles the product never draws (``bench/crop.py``'s
  ``other_tool_png``, which records matplotlib's own axes box), on the clean-room generator's series.

For every plot and every finder version in ``backend.data.plotarea.FINDER_VERSIONS`` it computes the
IoU of ``find_plot_area(image, version)`` with the true box; a crop is *on the axes* at IoU >= 0.9.
It reports, per family and per theme, the share on the axes and the median IoU for each version,
the plots a newer version moved off the axes (should be none), the finder's time per image, and
the time of each ``--resize`` setting (``bilinear``, ``ink``) squeezing the found crop to 128 px.

    OMP_NUM_THREADS=1 python bench/plot_area.py --data data/mixed600 --other 300   # ~2 min
    python bench/plot_area.py --per-class 4 --other 40                              # smoke run

Prints a markdown section (docs/BENCHMARKS_crop.md holds the latest).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from backend.data.plotarea import FINDER_VERSIONS, RESIZES, Box, apply_resize, find_plot_area  # noqa: E402
from backend.data.series import CLASSES  # noqa: E402
from bench.crop import other_tool_png, timestamps  # noqa: E402
from bench.independent_series import generate  # noqa: E402

HEADING = "## Plot-area finder versions on plots with known axes"
ON_AXES = 0.9
RESIZE_TO = 128  # visual_cnn's default input size: the squeeze the ink resize thickens for


def iou(box: Box, truth) -> float:
    """Intersection over union of a found box and the true (left, top, right, bottom)."""
    left, top, right, bottom = truth
    inner = max(0.0, min(box.right, right) - max(box.left, left)) * max(0.0, min(box.bottom, bottom) - max(box.top, top))
    union = box.width * box.height + (right - left) * (bottom - top) - inner
    return inner / union if union > 0 else 0.0


def varied_plots(data: Path):
    """(theme, image, true box) of every test plot of a generated dataset whose manifest has a style."""
    manifest = json.loads((data / "manifest.json").read_text())
    for sample in manifest["samples"]:
        if sample["split"] != "test" or "style" not in sample or "plot_area" not in sample:
            continue
        area = sample["plot_area"]
        image = np.asarray(Image.open(data / sample["png"]).convert("RGB"))
        theme = sample["style"]["theme"] if tuple(sample["image_size"]) != (800, 600) else "team"
        yield theme, image, (area["left"], area["top"], area["right"], area["bottom"])


def other_plots(count: int, seed: int):
    """(theme, image, true box) of ``count`` other-tool plots of clean-room series."""
    for index in range(count):
        rng = np.random.default_rng([seed, 99, index])
        values = generate(CLASSES[index % len(CLASSES)], rng)
        traits: dict = {}
        image = other_tool_png(values, timestamps(rng, len(values)), rng, traits)
        theme = traits["theme"] + (" (dark)" if traits["dark"] else "")
        yield theme, image, tuple(traits["axes_box"])


def score(plots) -> dict:
    """Per version: IoUs by theme and the finder's milliseconds per image; plus what moved off; and per
    resize setting (``RESIZES``) the milliseconds to squeeze the newest finder's crop to ``RESIZE_TO`` px."""
    result = {"iou": {v: defaultdict(list) for v in FINDER_VERSIONS}, "ms": {v: [] for v in FINDER_VERSIONS},
              "worse": [], "resize_ms": {r: [] for r in RESIZES}}  # fmt: skip
    for theme, image, truth in plots:
        found = {}
        for version in FINDER_VERSIONS:
            start = time.perf_counter()
            box = find_plot_area(image, version)
            result["ms"][version].append(1000 * (time.perf_counter() - start))
            found[version] = iou(box, truth)
            result["iou"][version][theme].append(found[version])
        crop = np.ascontiguousarray(image[box.top : box.bottom, box.left : box.right])  # box: the newest finder's
        for resize in RESIZES:
            start = time.perf_counter()
            apply_resize(crop, RESIZE_TO, resize)
            result["resize_ms"][resize].append(1000 * (time.perf_counter() - start))
        newest, previous = FINDER_VERSIONS[-1], FINDER_VERSIONS[-2]
        if found[previous] >= ON_AXES > found[newest]:
            result["worse"].append((theme, image.shape[:2], round(found[previous], 3), round(found[newest], 3)))
    return result


def table(name: str, result: dict) -> list[str]:
    """Markdown: every theme (and all), share on the axes and median IoU per version."""
    versions = FINDER_VERSIONS
    head = " | ".join(f"v{v} on axes | v{v} median IoU" for v in versions)
    lines = [f"**{name}**", "", f"| theme | plots | {head} |", "| --- | --- |" + " --- | --- |" * len(versions)]
    themes = sorted(result["iou"][versions[0]], key=lambda t: np.mean(np.array(result["iou"][versions[0]][t]) >= ON_AXES))
    for theme in [*themes, "all"]:
        cells = []
        for v in versions:
            values = (np.concatenate([np.array(x) for x in result["iou"][v].values()]) if theme == "all"
                      else np.array(result["iou"][v][theme]))  # fmt: skip
            cells.append(f"{np.mean(values >= ON_AXES):.2f} ({int(np.sum(values < ON_AXES))} off) | {np.median(values):.3f}")
        count = sum(len(x) for x in result["iou"][versions[0]].values()) if theme == "all" else len(result["iou"][versions[0]][theme])
        label = "**all**" if theme == "all" else theme
        lines.append(f"| {label} | {count} | {' | '.join(cells)} |")
    timing = ", ".join(f"v{v} median {np.median(result['ms'][v]):.2f} ms (95th pct {np.percentile(result['ms'][v], 95):.2f})"
                       for v in versions)  # fmt: skip
    resizing = ", ".join(f"{r} median {np.median(ms):.2f} ms (95th pct {np.percentile(ms, 95):.2f})"
                         for r, ms in result["resize_ms"].items())  # fmt: skip
    lines += ["", f"Finder time per image: {timing}.", "",
              f"Resize of the crop to {RESIZE_TO} px per image (`--resize`): {resizing}.", ""]  # fmt: skip
    if result["worse"]:
        lines += [f"Moved off the axes by v{versions[-1]}: {len(result['worse'])}: "
                  + "; ".join(f"{t} {h}x{w} IoU {a} -> {b}" for t, (h, w), a, b in result["worse"][:8]), ""]  # fmt: skip
    else:
        lines += [f"No plot on the axes with v{versions[-2]} is off them with v{versions[-1]}.", ""]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="generated dataset with a manifest (default: generate one)")
    parser.add_argument("--per-class", type=int, default=12, help="test plots per class when generating")
    parser.add_argument("--other", type=int, default=300, help="other-tool plots to draw")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "varied"
            subprocess.run([sys.executable, "-m", "backend", "generate", "--out", str(data), "--train-per-class", "1",
                            "--test-per-class", str(args.per_class), "--style", "varied", "--seed", str(args.seed)],
                           cwd=REPO, check=True, capture_output=True)  # fmt: skip
        varied = score(varied_plots(data))
    other = score(other_plots(args.other, args.seed))
    command = " ".join(["python bench/plot_area.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [HEADING, "", f"`{command}` ({time.strftime('%Y-%m-%d')}; IoU >= {ON_AXES} with the true axes box counts as on "
             "the axes; `off` = plots under it).", ""]  # fmt: skip
    lines += table(f"Generated plots ({data.name}, test split; team = the fixed 800x600 team style)", varied)
    lines += table(f"Other tools' plots ({args.other}, bench/crop.py's other_tool_png, seed {args.seed})", other)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
