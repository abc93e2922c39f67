"""The hostile upload corpus (``tests/fixtures/hostile.py``) timed through the predict path.

Two measurements:

- *per file*: ``load_input`` (what a worker process runs: read, check, decode or parse and draw)
  on each file in this process before torch is imported (as in a worker), with its wall time and
  the process's peak RSS while it ran (reset before each file through ``/proc/self/clear_refs``);
- *one batch*: every file plus a runaway (a named pipe nobody writes) through the real
  ``python -m backend predict --json --file-timeout 5`` subprocess: when each answer line arrived,
  against a run of the same command on one good file (start-up, torch import, model load and its
  own time).

The model is an untrained visual_cnn at 128 px on the CPU in fp32. Writes
``docs/BENCHMARKS_hostile.md``; runs in about a minute. Usage: ``python bench/hostile_inputs.py``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script: ``python bench/hostile_inputs.py``

from backend.data.inputs import load_input  # noqa: E402
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


def save_tiny_checkpoint(path: Path) -> Path:
    """An untrained visual_cnn checkpoint at 128 px (torch is imported here, after the per-file part)."""
    from backend.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from backend.models import create_model
    from backend.training.checkpoint import build_checkpoint, save_checkpoint

    model = create_model("visual_cnn", num_classes=9, image_size=128)
    checkpoint = build_checkpoint(
        model, class_names=[f"class_{i}" for i in range(9)], image_size=128,
        normalization={"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}, epoch=0, metrics={}, config={},
    )  # fmt: skip
    return save_checkpoint(path, checkpoint)


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


def cli_run(checkpoint: Path, files: list[Path]) -> tuple[list[tuple[str, float, str]], float]:
    """``python -m backend predict --json`` on ``files``: (file, seconds after start, answer) per line."""
    command = [sys.executable, "-m", "backend", "predict", "--checkpoint", str(checkpoint), "--device", "cpu",
               "--precision", "fp32", "--json", "--file-timeout", str(BUDGET_S), *map(str, files)]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    arrivals = []
    for line in process.stdout:
        answer = json.loads(line)
        arrivals.append(
            (Path(answer["filename"]).name, time.perf_counter() - start, answer["error"] or answer["predicted"])
        )
    process.wait()
    return arrivals, time.perf_counter() - start


def report(rows, arrivals, batch_seconds, single_seconds, baseline_mib, cli_peak_mib) -> str:
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
        f"- slowest file to read and decode: **{worst['seconds']:.2f} s** (`{worst['file']}`; aim < {AIM_SECONDS:.0f} s "
        "beyond the model's own time)",
        f"- highest peak RSS while decoding one file: **{biggest['peak_rss_mib']:.0f} MiB** (`{biggest['file']}`; "
        f"the process held {baseline_mib:.0f} MiB before; aim < {AIM_RSS_MIB} MiB)",
        f"- the `predict` command (torch and the model loaded, the batch below) peak RSS: {cli_peak_mib:.0f} MiB",
        f"- files answered as expected: {len(rows) - len(wrong)} of {len(rows)}"
        + (f" (not: {', '.join(wrong)})" if wrong else ""),
        f"- `predict` on one good file: {single_seconds:.1f} s in all (start-up, torch import, model load, "
        "worker start, its own time)",
        f"- `predict` on all {len(arrivals)} files plus a runaway named pipe, {BUDGET_S:.0f} s budget per file: "
        f"first answer after {arrivals[0][1]:.1f} s, every other file answered by {arrivals[-2][1]:.1f} s, "
        f"all after {batch_seconds:.1f} s; the runaway: `{arrivals[-1][2]}`",
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
        "## One batch through `python -m backend predict --json` (answers in input order, as printed)",
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
        baseline = peak_rss_mib()
        rows = per_file(corpus)
        checkpoint = save_tiny_checkpoint(Path(tmp) / "best.pt")
        good = next(item.path for item in corpus if item.name == "plot.png")
        _, single_seconds = cli_run(checkpoint, [good])
        arrivals, batch_seconds = cli_run(checkpoint, [item.path for item in corpus] + [runaway])
        cli_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    publish(report(rows, arrivals, batch_seconds, single_seconds, baseline, cli_peak), OUT)


if __name__ == "__main__":
    main()
