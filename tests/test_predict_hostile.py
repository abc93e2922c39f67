"""The hostile upload corpus (``tests/fixtures/hostile.py``): every file answered with its message in
time, in process and through the real ``python -m backend predict`` subprocess, where good files
always get their answers, a runaway file (a named pipe nobody writes) becomes an error on its
budget, and each answer is printed before a slow later file has finished."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backend.config import REPO_ROOT
from backend.data.inputs import load_input
from backend.models import create_model
from backend.training.checkpoint import build_checkpoint, save_checkpoint
from tests.fixtures.hostile import _series_csv, build_corpus, make_fifo

PER_FILE_SECONDS = 5.0  # the bound for any one file, beyond the model's own time


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A real (untrained) visual_cnn checkpoint at 32 px: what the CLI loads, without a training run."""
    model = create_model("visual_cnn", num_classes=3, image_size=32)
    checkpoint = build_checkpoint(
        model, class_names=["a", "b", "c"], image_size=32, normalization={"mean": [0.5] * 3, "std": [0.5] * 3},
        epoch=1, metrics={}, config={},
    )  # fmt: skip
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt", checkpoint)


def test_every_hostile_file_gets_its_message_in_time(corpus):
    """One test over the corpus, so a failure lists every file that answered wrongly or slowly."""
    wrong = []
    for item in corpus:
        start = time.perf_counter()
        try:
            image, _ = load_input(item.path, filename=item.name)
            error = None
        except (ValueError, OSError) as e:
            error = str(e)
        seconds = time.perf_counter() - start
        if item.expect is None and error is not None:
            wrong.append(f"{item.name}: expected a prediction, got {error!r}")
        elif item.expect is not None and (error is None or not re.search(item.expect, error)):
            wrong.append(f"{item.name}: expected /{item.expect}/, got {error!r}")
        elif error is None and (image.dtype.name != "uint8" or image.ndim != 3 or image.shape[2] != 3):
            wrong.append(f"{item.name}: decoded to {image.shape} {image.dtype}")
        if seconds > PER_FILE_SECONDS:
            wrong.append(f"{item.name}: took {seconds:.1f} s")
        if error is not None and "\n" in error:
            wrong.append(f"{item.name}: message spans lines")
    assert not wrong, "\n".join(wrong)


def predict_command(checkpoint: Path, *files: Path, timeout: float = 20) -> list[str]:
    return [sys.executable, "-m", "backend", "predict", "--checkpoint", str(checkpoint), "--device", "cpu",
            "--precision", "fp32", "--json", "--file-timeout", str(timeout), *map(str, files)]  # fmt: skip


def test_cli_answers_every_good_file_beside_every_bad_one_and_a_runaway(corpus, tiny_checkpoint, tmp_path):
    runaway = make_fifo(tmp_path / "runaway.csv")  # nobody ever writes: reading it never ends
    files = [item.path for item in corpus] + [runaway]
    started = time.perf_counter()
    done = subprocess.run(
        predict_command(tiny_checkpoint, *files, timeout=10),
        cwd=REPO_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["filename"] for a in answers] == [str(f) for f in files]  # one line per file, in order
    for item, answer in zip(corpus, answers, strict=False):
        if item.expect is None:
            assert answer["error"] is None and answer["predicted"] in {"a", "b", "c"}, (item.name, answer)
        else:
            assert answer["predicted"] is None and re.search(item.expect, answer["error"]), (item.name, answer)
    assert answers[-1]["error"] == "runaway.csv took longer than the 10 s allowed per file; stopped"
    assert time.perf_counter() - started < 300


def test_each_answer_is_printed_before_a_slow_later_file_finishes(corpus, tiny_checkpoint, tmp_path):
    good = next(item.path for item in corpus if item.name == "plot.png")
    slow = make_fifo(tmp_path / "slow.csv")  # finishes only when this test writes into it
    process = subprocess.Popen(
        predict_command(tiny_checkpoint, good, slow, good, timeout=300),
        cwd=REPO_ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=240))
        assert first["filename"] == str(good) and first["error"] is None
        assert process.poll() is None and lines.empty()  # still waiting on slow.csv, and said nothing of it
        with slow.open("w") as writer:  # now the slow file finishes, with a real series
            writer.write(_series_csv())
        rest = [json.loads(lines.get(timeout=240)) for _ in range(2)]
        process.wait(timeout=120)
    finally:
        if process.poll() is None:  # only when an assertion above failed
            process.kill()
            process.wait()
    assert [r["filename"] for r in rest] == [str(slow), str(good)]
    assert rest[0]["error"] is None and rest[0]["notes"][0] == "series from column 'value'"
    assert process.returncode == 0
