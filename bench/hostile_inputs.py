"""The hostile upload corpus (``tests/fixtures/hostile.py``) timed through the predict path.

Two measurements:

- *per file*: ``load_input`` (what a worker process runs: read, check, decode or parse and draw)
  on each file in this process, with its wall time and the process's peak RSS while it ran
  (the high-water mark is reset before each file through ``/proc/self/clear_refs``);
- *one batch*: every file plus a runaway (a named pipe nobody writes) through
  ``Predictor.iter_files`` with a 5 s budget, as ``python -m backend predict`` runs them: when each
  answer arrived, and the total.

The model is an untrained visual_cnn at 128 px on the CPU in fp32 (its own time is measured apart
and is not what this bench is about). Writes ``docs/BENCHMARKS_hostile.md``. Runs in under two
minutes. Usage: ``python bench/hostile_inputs.py``.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script: ``python bench/hostile_inputs.py``

import numpy as np  # noqa: E402

from backend.data.images import resize_rgb  # noqa: E402
from backend.data.inputs import load_input  # noqa: E402
from backend.data.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from backend.device import make_runtime  # noqa: E402
from backend.models import create_model  # noqa: E402
from backend.predict import Predictor  # noqa: E402
from backend.training.checkpoint import build_checkpoint  # noqa: E402
from bench.report import load_average, publish  # noqa: E402
from tests.fixtures.hostile import build_corpus, make_fifo  # noqa: E402

OUT = REPO_ROOT / "docs" / "BENCHMARKS_hostile.md"
BUDGET_S = 5.0
AIM_SECONDS, AIM_RSS_MIB = 5.0, 1536


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM) since the last :func:`reset_peak`, in MiB."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak RSS to the current RSS


def make_predictor() -> Predictor:
    model = create_model("visual_cnn", num_classes=9, image_size=128)
    checkpoint = build_checkpoint(
        model, class_names=[f"class_{i}" for i in range(9)], image_size=128,
        normalization={"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}, epoch=0, metrics={}, config={},
    )  # fmt: skip
    return Predictor(model, checkpoint, make_runtime("cpu", "fp32"), check_precision=False)


def per_file(corpus) -> list[dict]:
    rows = []
    for item in corpus:
        reset_peak()
        start = time.perf_counter()
        try:
            load_input(item.path, filename=item.name)
            answer = "predicted"
        except (ValueError, OSError) as e:
            answer = str(e)
        seconds = time.perf_counter() - start
        expected = answer == "predicted" if item.expect is None else bool(re.search(item.expect, answer))
        rows.append({"file": item.name, "kind": item.kind, "seconds": seconds, "peak_rss_mib": peak_rss_mib(),
                     "as_expected": expected, "answer": answer})  # fmt: skip
    return rows


def one_batch(predictor: Predictor, corpus, runaway: Path) -> tuple[list[tuple[str, float, str]], float]:
    files = [(item.name, item.path) for item in corpus] + [(runaway.name, runaway)]
    start = time.perf_counter()
    arrivals = []
    for prediction in predictor.iter_files(files, time_budget=BUDGET_S):
        arrivals.append((prediction.filename, time.perf_counter() - start, prediction.error or prediction.predicted))
    return arrivals, time.perf_counter() - start


def model_seconds(predictor: Predictor, image: np.ndarray) -> float:
    predictor.predict_images([image])  # warm-up
    start = time.perf_counter()
    predictor.predict_images([resize_rgb(image, 128)])
    return time.perf_counter() - start


def report(rows, arrivals, batch_seconds, model_s, baseline_mib, parent_peak_mib) -> str:
    worst = max(rows, key=lambda r: r["seconds"])
    biggest = max(rows, key=lambda r: r["peak_rss_mib"])
    wrong = [r["file"] for r in rows if not r["as_expected"]]
    lines = [
        "# Hostile inputs: every file answered, none holds back another",
        "",
        f"`python bench/hostile_inputs.py` on {platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores, load average {load_average()}. {len(rows)} files of the corpus in `tests/fixtures/hostile.py`.",
        "",
        "## Summary",
        "",
        f"- slowest file: **{worst['seconds']:.2f} s** (`{worst['file']}`; aim < {AIM_SECONDS:.0f} s beyond the "
        f"model's own {model_s * 1000:.0f} ms)",
        f"- highest peak RSS while decoding one file: **{biggest['peak_rss_mib']:.0f} MiB** (`{biggest['file']}`; "
        f"the process held {baseline_mib:.0f} MiB before; aim < {AIM_RSS_MIB} MiB)",
        f"- the predicting process (torch and the model loaded) during the batch below: peak RSS {parent_peak_mib:.0f} MiB",
        f"- files answered as expected: {len(rows) - len(wrong)} of {len(rows)}"
        + (f" (not: {', '.join(wrong)})" if wrong else ""),
        f"- one batch of all {len(arrivals)} files plus a runaway named pipe, {BUDGET_S:.0f} s budget per file: "
        f"first answer after {arrivals[0][1]:.2f} s, all after {batch_seconds:.2f} s; the runaway: "
        f"`{arrivals[-1][2]}`",
        "",
        "## Per file (read, check, decode or parse and draw, in this process)",
        "",
        "| file | kind | seconds | peak RSS MiB | as expected | answer |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        answer = r["answer"] if len(r["answer"]) <= 90 else r["answer"][:87] + "..."
        lines.append(
            f"| {r['file']} | {r['kind']} | {r['seconds']:.3f} | {r['peak_rss_mib']:.0f} | "
            f"{'yes' if r['as_expected'] else '**no**'} | {answer.replace('|', '/')} |"
        )
    lines += [
        "",
        "## One batch through `Predictor.iter_files` (worker processes, answers in input order)",
        "",
        "| file | answered after s | answer |",
        "| --- | ---: | --- |",
    ]
    for name, seconds, answer in arrivals:
        answer = str(answer)
        lines.append(f"| {name} | {seconds:.2f} | {(answer if len(answer) <= 70 else answer[:67] + '...')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = build_corpus(Path(tmp) / "corpus")
        runaway = make_fifo(Path(tmp) / "runaway.csv")
        predictor = make_predictor()
        plot, _ = load_input(next(item.path for item in corpus if item.name == "plot.png"))
        model_s = model_seconds(predictor, plot)
        baseline = peak_rss_mib()
        rows = per_file(corpus)
        reset_peak()
        arrivals, batch_seconds = one_batch(predictor, corpus, runaway)
        parent_peak = peak_rss_mib()
    publish(report(rows, arrivals, batch_seconds, model_s, baseline, parent_peak), OUT)


if __name__ == "__main__":
    main()
