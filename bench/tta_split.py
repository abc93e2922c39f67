"""Test-time augmentation on a stored run's own test split: each mode against one view, paired.

The Predict page offers TTA modes (``backend.data.transforms.TTA_MODES``: ``flip4`` averages the
plot, its horizontal and vertical flips and both). Whether a mode helps is a property of the
trained model (the light augmentation trains on horizontal flips only), so this scores a stored
image run's test plots once per mode through the product's ``Predictor.predict_batch``, on the
images exactly as the run prepared them (its checkpoint's ``preprocessing``, from the training
cache), and pairs every mode with ``none`` on the same plots: macro-F1 with its interval, the paired
difference with its interval and McNemar's p, then the same split by drawing style as
``bench/paired_by_style.py`` does (team style, the varied half, each theme).

    RUNS_DB_URL=sqlite:///STORE/runs.db python bench/tta_split.py 3 --data DATASET [--modes flip4]

Prints markdown; docs/BENCHMARKS_quality.md holds the figures it produced.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend import store  # noqa: E402
from backend.data.cache import load_dataset_cache  # noqa: E402
from backend.data.transforms import TTA_MODES  # noqa: E402
from backend.evaluation.stats import format_interval, paired_comparison  # noqa: E402
from bench.paired_by_style import markdown, paired_rows, style_groups  # noqa: E402


def predict_modes(predictor, images: np.ndarray, modes: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Predicted class index of every image under each TTA mode (``none`` first)."""
    out = {}
    for mode in ["none", *[m for m in modes if m != "none"]]:
        chunks = [predictor.predict_batch(images[i : i + batch_size], mode)[0] for i in range(0, len(images), batch_size)]
        out[mode] = np.concatenate(chunks).argmax(axis=1)
    return out


def summary_lines(run_id: int, y_true, predicted: dict[str, np.ndarray], names: list[str]) -> list[str]:
    """One row per mode: macro-F1, and the paired difference against ``none`` (interval, items only
    one of the two got right, McNemar's p)."""
    lines = ["| run | TTA | macro-F1 | mode - none [95% CI] | only mode right / only none right | McNemar p |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for mode, pred in predicted.items():
        pair = paired_comparison(y_true, pred, predicted["none"], names)
        change = "" if mode == "none" else format_interval(pair["macro_f1_diff"], pair["macro_f1_diff_ci"])
        counts = "" if mode == "none" else f"{pair['discordant'][0]} / {pair['discordant'][1]}"
        p = "" if mode == "none" else f"{pair['mcnemar_p']:.3f}"
        lines.append(f"| {run_id} | {mode} | {pair['macro_f1_a']:.3f} | {change} | {counts} | {p} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=int)
    parser.add_argument("--data", type=Path, required=True, help="the generated dataset the run tested on")
    parser.add_argument("--modes", default="flip4", help=f"comma-separated TTA modes to pair with none ({', '.join(TTA_MODES.names())})")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in TTA_MODES.names()]
    if unknown:
        parser.error(f"unknown TTA mode(s) {', '.join(unknown)}; choose from {', '.join(TTA_MODES.names())}")
    from backend.models import model_input_kind
    from backend.predict import Predictor

    try:
        run = store.get_run(args.run)
    except store.RunNotFound:
        parser.error(f"no run {args.run} in the store")
    frame = store.predictions(args.run)
    if not run.checkpoint_path or frame.empty:
        parser.error(f"run {args.run} needs a checkpoint and stored test predictions")
    if model_input_kind(run.model) != "image":
        parser.error(f"run {args.run} is a {run.model} run; TTA here is for image runs (bench/series_tta.py for series)")
    predictor = Predictor.from_checkpoint(run.checkpoint_path, device="cpu", precision="fp32")
    paths = list(frame["path"])
    files = [args.data / path for path in paths]
    images = load_dataset_cache(files, predictor.image_size, preprocessing=predictor.preprocessing)
    names = list(predictor.class_names)
    y_true = np.asarray(frame["true_index"])
    predicted = predict_modes(predictor, images, modes)
    print("\n".join(summary_lines(args.run, y_true, predicted, names)))
    groups = style_groups(json.loads((args.data / "manifest.json").read_text()))
    for mode in predicted:
        if mode == "none":
            continue
        print(f"\nBy drawing style, accuracy: A = none, B = {mode}\n")
        rows = paired_rows(paths, y_true, predicted["none"], predicted[mode], names, groups, resamples=args.resamples)
        print(markdown(rows, "none", mode))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
