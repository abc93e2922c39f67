"""Training throughput: the whole input pipeline against the model alone (the limit).

For each model and image size, with the same batch size, precision, optimiser and step code
(``backend.training.loop.train_one_epoch``):

- **model only**: one normalised batch already on the device, stepped again and again;
- **pipeline**: the product's path, from the decoded uint8 cache through augmentation (the GPU batch
  path, or albumentations in DataLoader workers), normalisation on the device and the same step.

The ratio pipeline / model-only is the figure ``TARGETS.md`` aims at (>= 0.90). The one-off cost of
decoding the PNGs into the cache is reported beside it. The two are timed in interleaved chunks
(``--repeats`` chunks of ``--steps`` steps each) and their totals compared, so on a shared machine
both columns see the same background load.

    python bench/train_throughput.py                      # all models at 224 and 128 px
    python bench/train_throughput.py --models visual_cnn --sizes 128 --steps 10
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from backend.data.generate import generate_dataset  # noqa: E402
from backend.device import make_runtime  # noqa: E402
from backend.models import create_model, list_models  # noqa: E402
from backend.runs.lifecycle import build_config  # noqa: E402
from backend.training.config import load_split  # noqa: E402
from backend.training.data import build_training_data  # noqa: E402
from backend.training.loop import on_runtime, train_one_epoch  # noqa: E402
from backend.training.losses import build_loss  # noqa: E402
from backend.training.optim import build_optimizer, build_schedule  # noqa: E402
from bench.report import load_average, publish  # noqa: E402

OUT = REPO / "docs" / "BENCHMARKS_train.md"


def parse_args() -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list_models(), help="models to measure (default: all)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 128], help="image sizes in pixels")
    parser.add_argument("--steps", type=int, default=20 if cuda else 2, help="timed steps per chunk")
    parser.add_argument("--warmup", type=int, default=5 if cuda else 2, help="untimed steps first, for each column")
    parser.add_argument("--repeats", type=int, default=5 if cuda else 4, help="chunks per column, interleaved")
    parser.add_argument("--batch-size", type=int, default=128 if cuda else 16)
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16 (CUDA)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--augmentation", default="light", help="training preset (the product's default: light)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1) if cuda else 0,
                        help="DataLoader workers when the preset runs in workers")  # fmt: skip
    parser.add_argument("--images-per-class", type=int, default=24 if cuda else 8, help="training images per class")
    parser.add_argument("--data", type=Path, help="an existing dataset to read instead of generating one")
    parser.add_argument("--out", type=Path, default=OUT, help="markdown file for the table")
    return parser.parse_args()


def timed_steps(model, criterion, optimizer, schedule, batches, runtime, steps: int) -> float:
    """Seconds for ``steps`` optimiser steps over the next ``steps`` batches of ``batches``."""
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.uses_grad_scaler)
    started = time.perf_counter()
    train_one_epoch(model, criterion, optimizer, itertools.islice(batches, steps), runtime=runtime,
                    schedule=schedule, scaler=scaler)  # fmt: skip
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def endless(data):
    """Training batches of epoch after epoch (a bench needs more steps than a tiny set has)."""
    while True:
        yield from data.train_batches()


def measure(args: argparse.Namespace, dataset: Path, model_name: str, size: int) -> dict:
    """Model-only and pipeline images/s for one model at one size."""
    config = build_config({"data": str(dataset), "model": model_name, "image_size": size, "batch_size": args.batch_size,
                           "precision": args.precision, "device": args.device, "augmentation": args.augmentation,
                           "workers": args.workers, "scheduler": "none"})  # fmt: skip
    runtime = make_runtime(config.device, config.precision)
    started = time.perf_counter()
    data = build_training_data(config, load_split(config), runtime)
    cache_seconds = time.perf_counter() - started
    model = on_runtime(create_model(model_name, num_classes=len(data.class_names), image_size=size,
                                    **config.model_kwargs), runtime)  # fmt: skip
    criterion = build_loss("ce", class_counts=np.bincount(data.train_labels, minlength=len(data.class_names)).tolist())
    optimizer = build_optimizer(model, config)
    schedule = build_schedule(optimizer, config, data.steps_per_epoch)
    fixed = next(data.train_batches())  # already augmented, normalised and on the device
    sources = {"model_only": itertools.repeat(fixed), "pipeline": endless(data)}
    seconds = dict.fromkeys(sources, 0.0)
    for batches in sources.values():  # warm-up: allocator, kernel choice, first DataLoader epoch
        timed_steps(model, criterion, optimizer, schedule, batches, runtime, args.warmup)
    for _ in range(args.repeats):  # interleaved, so both columns see the same background load
        for key, batches in sources.items():
            seconds[key] += timed_steps(model, criterion, optimizer, schedule, batches, runtime, args.steps)
    images = args.repeats * args.steps * config.batch_size
    rates = {key: images / total for key, total in seconds.items()}
    return {"model": model_name, "size": size, "batch": config.batch_size, "precision": runtime.describe(),
            "path": data.path, "cache_s": cache_seconds, **rates, "ratio": rates["pipeline"] / rates["model_only"]}  # fmt: skip


def markdown(rows: list[dict], args: argparse.Namespace, load: tuple[str, str]) -> str:
    lines = [
        "# Training throughput: pipeline vs model only",
        "",
        "Written by `bench/train_throughput.py`. Same model, image size, batch, precision, optimiser and step",
        "code for both columns; *model only* steps one normalised batch already on the device, *pipeline* reads",
        "the decoded uint8 cache through augmentation and normalisation. Aim: ratio >= 0.90 (`TARGETS.md`).",
        "",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        f"- steps: {args.warmup} warm-up, then {args.repeats} interleaved chunks of {args.steps} timed steps per column;"
        f" augmentation `{args.augmentation}`, workers {args.workers}",
        f"- load average before / after: {load[0]} / {load[1]} (a shared machine: other work slows both columns)",
        "- cache build s: decoding the PNGs once at that size (the first model), then loading the saved cache",
        "",
        "| model | size | batch | runtime | data path | model only img/s | pipeline img/s | ratio | cache build s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | {r['precision']} | {r['path']} | "
                     f"{r['model_only']:,.1f} | {r['pipeline']:,.1f} | {r['ratio']:.2f} | {r['cache_s']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def scratch_folder() -> Path:
    """A temporary folder for the generated data and the caches (ARTIFACTS_DIR), removed at exit.

    Made in ``main`` only: the generator's worker processes import this script again.
    """
    folder = Path(tempfile.mkdtemp(prefix="awb-bench-train-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["ARTIFACTS_DIR"] = str(folder / "artifacts")  # caches go here, not into the repo
    return folder


def main() -> int:
    args = parse_args()
    load_before = load_average()
    dataset = args.data or scratch_folder() / "data"
    if args.data is None:
        print(f"generating {args.images_per_class} train + 2 test images per class into {dataset} ...", flush=True)
        generate_dataset(dataset, train_per_class=args.images_per_class, test_per_class=2, seed=0)
    rows = []
    for model_name in args.models:
        for size in args.sizes:
            row = measure(args, dataset, model_name, size)
            print(f"{model_name} {size}px: model only {row['model_only']:.1f} img/s, pipeline {row['pipeline']:.1f} "
                  f"img/s, ratio {row['ratio']:.2f} ({row['path']})", flush=True)  # fmt: skip
            rows.append(row)
    text = markdown(rows, args, (load_before, load_average()))
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
