"""Quality: generate a standard synthetic set, train one model on it, report accuracy, macro-F1 and the
train-test gap beside the team's ResNet50 (74.29% accuracy, macro-F1 0.742, 8.6-point gap).

The run goes through ``train_run``, the entry point of ``python -m backend train``, into a scratch
run store, so the figures are exactly what the product would show. The test split is never used to
pick anything but the best epoch (as in the seed); the gap is the training accuracy at that epoch
(augmented, dropout on, as the seed measured it) minus the test accuracy.

    python bench/quality.py                                   # visual_cnn, nine classes, CPU-sized
    python bench/quality.py --model resnet50 --image-size 224 --epochs 30   # on a GPU
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from backend import store  # noqa: E402
from backend.data.generate import generate_dataset  # noqa: E402
from backend.runs.lifecycle import build_config, train_run  # noqa: E402
from bench.report import load_average, publish  # noqa: E402

OUT = REPO / "docs" / "BENCHMARKS_quality.md"
TEAM = {"acc": 0.7429, "f1": 0.742, "gap": 0.0858}  # seed 000: ResNet50, ImageNet-pretrained, 224 px
# The standard set: the seed's 200 train and ~110 test images per class (team style).
STANDARD_TRAIN_PER_CLASS, STANDARD_TEST_PER_CLASS = 200, 110


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="visual_cnn")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-per-class", type=int, default=STANDARD_TRAIN_PER_CLASS,
                        help="the seed's 200 train images per class")
    parser.add_argument("--test-per-class", type=int, default=STANDARD_TEST_PER_CLASS,
                        help="the seed's ~110 test images per class")
    parser.add_argument("--seed", type=int, default=0, help="generator and training seed")
    parser.add_argument("--data", type=Path, help="use (or generate once into) this dataset folder")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="any other TrainConfig option, e.g. --option augmentation=plot (repeatable)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def scratch_folder() -> Path:
    """A temporary run store, artifacts folder and dataset, removed at exit: the bench leaves no runs.

    Made in ``main`` only: the generator's worker processes import this script again.
    """
    folder = Path(tempfile.mkdtemp(prefix="awb-bench-quality-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["RUNS_DB_URL"] = f"sqlite:///{folder / 'runs.db'}"
    os.environ["ARTIFACTS_DIR"] = str(folder / "artifacts")
    return folder


def dataset_for(args: argparse.Namespace, scratch: Path) -> tuple[Path, float | None]:
    """The dataset folder, generated when missing; and the seconds generation took (None if reused)."""
    folder = args.data or scratch / "standard"
    if (folder / "manifest.json").is_file():
        return folder, None
    print(f"generating {args.train_per_class} train + {args.test_per_class} test per class into {folder} ...",
          flush=True)  # fmt: skip
    started = time.perf_counter()
    generate_dataset(folder, train_per_class=args.train_per_class, test_per_class=args.test_per_class, seed=args.seed)
    return folder, time.perf_counter() - started


def main() -> int:
    args = parse_args()
    load_before = load_average()
    dataset, generation_s = dataset_for(args, scratch_folder())
    options = dict(option.split("=", 1) for option in args.option)
    config = build_config({"data": str(dataset), "model": args.model, "image_size": args.image_size,
                           "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed, **options})  # fmt: skip
    started = time.perf_counter()
    result = train_run(config)
    train_s = time.perf_counter() - started
    run = store.get_run(result.run_id)
    if result.status != "completed":
        print(f"run ended {result.status}: {run.error}", file=sys.stderr)
        return 1
    gap = run.train_acc_at_best - run.best_val_acc
    last = store.run_history(run.id).iloc[-1]  # no epoch picked on the test split: the selection's effect
    counts = run.class_counts
    lines = [
        "# Quality on the standard synthetic set",
        "",
        "Written by `bench/quality.py`: a generated set (team plot style, seeded), one model trained through",
        "`python -m backend train`'s entry point; test = the held-out split, best epoch by its macro-F1 (as the",
        "seed did); gap = training accuracy at the best epoch (augmented) minus test accuracy.",
        "",
        f"- data: {len(run.class_names)} classes, {sum(counts['train'].values())} train / "
        f"{sum(counts['test'].values())} test images"
        + (f", generated in {generation_s:.0f} s" if generation_s else ""),
        f"- run: {run.device}; {run.num_params:,} parameters; {run.current_epoch} epochs in {train_s:.0f} s",
        f"- load average before / after: {load_before} / {load_average()} (a shared machine stretches the time)",
        f"- config: {', '.join(f'{k}={v}' for k, v in sorted(config.to_dict().items()) if k not in {'data', 'name'})}",
        "",
        "| model | size | test acc | macro-F1 | train acc at best | train-test gap | best epoch | last epoch acc / F1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {args.model} (ours) | {args.image_size} | {100 * run.best_val_acc:.2f}% | {run.best_val_f1:.3f} | "
        f"{100 * run.train_acc_at_best:.2f}% | {100 * gap:.1f} points | {run.best_epoch} | "
        f"{100 * last['val_acc']:.2f}% / {last['val_f1']:.3f} |",
        f"| team ResNet50 (seed 000) | 224 | {100 * TEAM['acc']:.2f}% | {TEAM['f1']:.3f} | 82.87% | "
        f"{100 * TEAM['gap']:.1f} points | 25 | 73.69% / 0.737 |",
        "",
        "Per class (test split, best epoch):",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in store.class_metrics(run.id).itertuples():
        lines.append(f"| {row.class_name} | {row.precision:.3f} | {row.recall:.3f} | {row.f1:.3f} | {row.support} |")
    text = "\n".join(lines) + "\n"
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
