"""Launch-to-first-epoch latency: the ``local`` executor against the ``ray`` executor, same tiny run.

For each executor, ``--repeats`` runs of the same tiny training (visual_cnn, 32 px, 2 epochs, 9
classes x 6 train images, CPU) are launched one after another through ``backend.runs.launch``, and
the store is polled (every 20 ms) for three moments after the call: the trainer claimed the run
(``running`` with its own pid recorded), the first epoch row arrived, and the run completed.
A real local Ray head (``ray start --head --num-cpus 2``, as the tests start it) serves the ray
runs. Medians are printed as a Markdown table (docs/BENCHMARKS_team.md).

    .venv/bin/python bench/team.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.data.generate import generate_dataset  # noqa: E402
from tests.fixtures.ray_head import start_ray_head, stop_ray_head  # noqa: E402

POLL_S = 0.02
RUN_TIMEOUT_S = 600.0
TINY = {"model": "visual_cnn", "image_size": 32, "epochs": 2, "batch_size": 8, "workers": 0, "augmentation": "none",
        "device": "cpu", "precision": "fp32"}  # fmt: skip


def time_one(executor: str, config: dict, address: str | None) -> dict[str, float]:
    """Seconds from ``launch`` to claim, first epoch and completion of one run."""
    from backend import runs, store

    began = time.perf_counter()
    run_id = runs.launch(config, executor=executor, address=address)
    returned = time.perf_counter() - began
    marks: dict[str, float] = {"launch returned": returned}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        now = time.perf_counter() - began
        if "claimed" not in marks and run.host is not None and run.heartbeat_at is not None:
            marks["claimed"] = now
        if "first epoch" not in marks and (run.current_epoch or 0) >= 1:
            marks["first epoch"] = now
        if run.status not in store.ACTIVE:
            if run.status != "completed":
                raise RuntimeError(f"{executor} run {run_id} ended {run.status}: {run.error}")
            marks["completed"] = now
            return marks
        time.sleep(POLL_S)
    raise RuntimeError(f"{executor} run {run_id} did not finish in {RUN_TIMEOUT_S:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="awb-bench-team-"))
    os.environ.update(RUNS_DB_URL=f"sqlite:///{root / 'runs.db'}", ARTIFACTS_DIR=str(root / "artifacts"),
                      DATA_DIR=str(root / "data"), MAX_CONCURRENT_RUNS="1")  # fmt: skip
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    dataset = root / "data" / "tiny"
    generate_dataset(dataset, train_per_class=6, test_per_class=3, seed=0, size=(96, 72), workers=1)
    config = {**TINY, "data": str(dataset)}

    began = time.perf_counter()
    head = start_ray_head()
    head_start = time.perf_counter() - began
    results: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    try:
        for _ in range(args.repeats):  # interleaved, so both see the same background load
            for executor in results:
                results[executor].append(time_one(executor, config, head.address if executor == "ray" else None))
                print(executor, {k: round(v, 2) for k, v in results[executor][-1].items()}, file=sys.stderr)
    finally:
        stop_ray_head(head)

    load = os.getloadavg()[0]
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load {load:.1f}; {args.repeats} runs per executor; "
          f"Ray head start-up {head_start:.1f} s (once)\n")  # fmt: skip
    marks = ("launch returned", "claimed", "first epoch", "completed")
    print("| executor | " + " | ".join(f"{m} (s, median)" for m in marks) + " |")
    print("| --- |" + " --- |" * len(marks))
    for executor, rows in results.items():
        cells = [f"{statistics.median(row[m] for row in rows):.2f}" for m in marks]
        print(f"| {executor} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
