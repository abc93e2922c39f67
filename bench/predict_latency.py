"""Prediction latency: ``none`` vs batched ``flip4`` vs flip4 as four separate calls, per model and
precision, and files per second for a folder of 200 plot PNGs predicted in batches.

Untrained weights (timing does not depend on them). The bf16 rows force autocast without the
Predictor's fp32-agreement check, which untrained near-uniform outputs would always fail.
Writes ``docs/BENCHMARKS_predict.md``. Usage: ``python bench/predict_latency.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script: ``python bench/predict_latency.py``

# Files are read in worker processes (backend/data/inputs.py), and each worker imports the calling
# script again as "__mp_main__" (CPython 3.11's forkserver never preloads __main__). Importing torch
# there would add 1-3 s to every "file end to end" call, a cost of this script, not of the product
# (``python -m backend predict`` workers import nothing extra; under Streamlit about 0.1 s), so the
# workers skip these imports; nothing of this module runs in them.
if __name__ != "__mp_main__":
    import numpy as np  # noqa: E402
    import torch  # noqa: E402

    from backend.data.render import encode_png, render_series  # noqa: E402
    from backend.data.series import CLASSES, generate_series  # noqa: E402
    from backend.data.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
    from backend.device import make_runtime  # noqa: E402
    from backend.models import create_model, model_defaults  # noqa: E402
    from backend.predict import Predictor  # noqa: E402
    from backend.training.checkpoint import build_checkpoint  # noqa: E402

MODELS = (("visual_cnn", 128), ("resnet50", 224), ("vae_classifier", 224))
FOLDER_FILES = 200
OUT = REPO_ROOT / "docs" / "BENCHMARKS_predict.md"


def make_predictor(name: str, size: int, device: str, precision: str) -> Predictor:
    """An untrained ``name`` wrapped as a Predictor on ``device`` at ``precision`` (fp32 or bf16), built
    with the model options a new run gets (``model_defaults``: e.g. visual_cnn's 5 blocks of two convs)."""
    torch.manual_seed(0)
    model_kwargs = model_defaults(name).get("model_kwargs", {})  # a fresh copy
    model = create_model(name, num_classes=len(CLASSES), image_size=size, **model_kwargs)
    checkpoint = build_checkpoint(
        model, class_names=CLASSES, image_size=size, normalization={"mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        epoch=0, metrics={}, config={},
    )  # fmt: skip
    runtime = make_runtime(device, "fp32")
    if precision == "bf16":
        runtime = dataclasses.replace(runtime, dtype=torch.bfloat16)
    return Predictor(model, checkpoint, runtime, check_precision=False)


def best_ms(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Fastest of ``repeats`` timings (ms) of each case. The cases are interleaved, so load from other
    processes on the shared CPU falls on all of them alike, and the minimum is the least disturbed."""
    for fn in cases.values():
        fn()  # warm-up: first-call allocations and oneDNN kernel selection
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * min(values) for name, values in times.items()}


def latency_row(predictor: Predictor, plot: np.ndarray, png: bytes, repeats: int) -> dict:
    """Per-file latencies (ms): file end to end, and the model path for none / flip4 / 4 x none."""
    flips = [np.ascontiguousarray(v) for v in (plot, plot[:, ::-1], plot[::-1], plot[::-1, ::-1])]
    cases = {
        "file": lambda: predictor.predict_file(png, filename="plot.png"),
        "none": lambda: predictor.predict_images([plot], "none"),
        "flip4": lambda: predictor.predict_images([plot], "flip4"),
        "four": lambda: [predictor.predict_images([view], "none") for view in flips],
    }
    return best_ms(cases, repeats)


def folder_rate(predictor: Predictor, files: list[Path], tta: str) -> float:
    """Files per second for the whole folder through ``predict_files`` in batches of 32."""
    pairs = [(path.name, path) for path in files]
    predictor.predict_files(pairs[:32], tta)  # warm-up
    start = time.perf_counter()
    results = predictor.predict_files(pairs, tta, batch_size=32)
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r.error]
    if failed:
        raise SystemExit(f"{len(failed)} files failed, e.g. {failed[0].filename}: {failed[0].error}")
    return len(files) / elapsed


def write_folder(root: Path, count: int) -> list[Path]:
    """``count`` team-style plot PNGs (ten distinct series, repeated: decoding cost is per file)."""
    rng = np.random.default_rng(0)
    pngs = [encode_png(render_series(generate_series(name, rng).values)) for name in CLASSES[:10]]
    files = []
    for i in range(count):
        path = root / f"plot_{i:03d}.png"
        path.write_bytes(pngs[i % len(pngs)])
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu, or auto/cuda on a machine with a GPU")
    parser.add_argument("--out", type=Path, default=OUT, help="markdown file for the report")
    parser.add_argument("--models", nargs="+", choices=[name for name, _ in MODELS], default=[name for name, _ in MODELS],
                        help="models to time (default: all three)")  # fmt: skip
    parser.add_argument("--folder-files", type=int, default=FOLDER_FILES,
                        help="PNG files in the timed folder (default 200; fewer only for a smoke check)")  # fmt: skip
    args = parser.parse_args()
    if args.folder_files < 1:
        parser.error("--folder-files must be at least 1")
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(1)
    plot = render_series(generate_series("mean_shift", rng).values)
    png = encode_png(plot)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_folder(Path(tmp), args.folder_files)
        rows = []
        for name, size in (m for m in MODELS if m[0] in args.models):
            for precision in ("fp32", "bf16"):
                predictor = make_predictor(name, size, args.device, precision)
                row = latency_row(predictor, plot, png, args.repeats)
                row.update(model=name, size=size, precision=precision, rate=folder_rate(predictor, files, "none"))
                rows.append(row)
                print(format_row(row), flush=True)
    load = (load_before, os.getloadavg()[0])
    report = render_report(rows, plot.shape, predictor.runtime, load, args.folder_files)
    args.out.write_text(report)
    print(f"\n{report}\nwritten to {args.out}")


HEADER = (
    "| model | px | precision | file end to end, none (ms) | none (ms) | flip4 batched (ms) | flip4 as 4 calls (ms) "
    "| flip4 / none | 4 calls / batched | folder of {files}, none (files/s) |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def format_row(row: dict) -> str:
    return (
        f"| {row['model']} | {row['size']} | {row['precision']} | {row['file']:.1f} | {row['none']:.1f} "
        f"| {row['flip4']:.1f} | {row['four']:.1f} | {row['flip4'] / row['none']:.2f} "
        f"| {row['four'] / row['flip4']:.2f} | {row['rate']:.1f} |"
    )


def render_report(rows: list[dict], plot_shape: tuple, runtime, load: tuple[float, float], folder_files: int) -> str:
    return "\n".join(
        [
            "# Prediction latency (bench/predict_latency.py)",
            "",
            f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"{runtime.device.type}. Untrained weights, one {plot_shape[1]}x{plot_shape[0]} team-style plot; "
            "fastest of interleaved repeats (the minimum is the least disturbed by other work). "
            f"Load average (1 min) at the start and end: {load[0]:.1f} and {load[1]:.1f} on {os.cpu_count()} cores; "
            "above the core count, other processes were competing and absolute times are inflated.",
            "",
            "- *file end to end*: `predict_file` on PNG bytes: a reader process started for the call (as every "
            "prediction does, so a file that hangs its decoder can be stopped), decode, crop, resize, normalise, forward.",
            "- *none / flip4 batched / flip4 as 4 calls*: `predict_images` on the decoded plot; the 4 calls "
            "are the four flipped views predicted one at a time, as if TTA were a loop.",
            f"- *folder of {folder_files}*: `predict_files` over {folder_files} PNG files on disk, batches of 32, TTA none.",
            "",
            HEADER.format(files=folder_files),
            *[format_row(row) for row in rows],
            "",
        ]
    )


if __name__ == "__main__":
    main()
