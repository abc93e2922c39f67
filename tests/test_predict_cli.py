"""``python -m backend predict`` and ``evaluate`` on real runs, files and store.

One real subprocess per verb (``backend``: the exit status and output a shell sees); the other
cases run the same CLI ``main`` in this process (``run_cli``, tests/fixtures/cli.py), which spares
each a 10-20 s torch import. tests/test_predict_hostile.py drives more real ``predict`` children.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend import store
from backend.config import REPO_ROOT
from tests.fixtures.cli import run_cli


def backend(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m backend ...`` in a child that shares this session's store and folders."""
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        cwd=REPO_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=240,
    )  # fmt: skip


@pytest.fixture(scope="module")
def files(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """A generated test PNG, its CSV, and a text file posing as a PNG."""
    png = sorted((tiny_dataset / "test").glob("*/*.png"))[0]
    csv = tiny_dataset / "csv" / "test" / png.parent.name / f"{png.stem}.csv"
    bad = tmp_path_factory.mktemp("cli") / "fake.png"
    bad.write_text("timestamp,value\n")
    return {"png": png, "csv": csv, "bad": bad}


def test_predict_prints_one_line_per_file_and_survives_a_bad_one(completed_runs, files):
    done = backend("predict", "--run", str(completed_runs["visual_cnn"]), "--tta", "flip4",
                   str(files["png"]), str(files["csv"]), str(files["bad"]))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{files['png']}: ") and "top-3: " in lines[0]
    assert lines[1].startswith(f"{files['csv']}: ") and "series from column 'value'" in lines[1]
    assert lines[2] == f"{files['bad']}: error: fake.png is not an image: its content is text"


def test_predict_json_gives_one_object_per_file(completed_runs, files):
    done = run_cli(
        "predict", "--run", str(completed_runs["vae_classifier"]), "--json", str(files["png"]), str(files["bad"])
    )
    assert done.returncode == 0, done.stderr
    good, bad = (json.loads(line) for line in done.stdout.splitlines())
    assert good["error"] is None and len(good["top"]) == 3
    assert good["predicted"] == good["top"][0]["class"]
    assert sum(good["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert bad["filename"] == str(files["bad"]) and bad["predicted"] is None and "not an image" in bad["error"]


def test_predict_fails_only_when_every_file_fails(completed_runs, files, tmp_path):
    missing = tmp_path / "missing.csv"
    done = run_cli("predict", "--run", str(completed_runs["visual_cnn"]), str(files["bad"]), str(missing))
    assert done.returncode == 1
    assert [line.split(": error: ")[0] for line in done.stdout.splitlines()] == [str(files["bad"]), str(missing)]


def test_predict_with_a_missing_run_is_one_line_on_stderr(files):
    done = run_cli("predict", "--run", "424242", str(files["png"]))
    assert done.returncode == 2
    assert done.stderr == "error: run 424242 not found\n" and done.stdout == ""


def test_evaluate_prints_the_report_and_stores_it_with_the_run(completed_runs, tiny_dataset):
    run_id = completed_runs["visual_cnn"]
    before = len(store.list_evaluations(run_id))
    done = backend("evaluate", "--run", str(run_id), "--data", str(tiny_dataset))
    assert done.returncode == 0, done.stderr
    for part in (
        "accuracy",
        "macro F1",
        "confusion matrix (rows: true class, columns: predicted class by number)",
        "support",
    ):
        assert part in done.stdout
    evaluations = store.list_evaluations(run_id)
    assert len(evaluations) == before + 1
    assert f"stored as evaluation {evaluations['id'].iloc[0]} of run {run_id}" in done.stdout


def test_evaluate_json_with_a_checkpoint_is_not_stored(completed_runs, tiny_dataset):
    run = store.get_run(completed_runs["resnet50"])
    before = len(store.list_evaluations(run.id))
    done = run_cli("evaluate", "--checkpoint", run.checkpoint_path, "--data", str(tiny_dataset), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["evaluation_id"] is None and report["run_id"] is None
    assert report["n_samples"] == sum(map(sum, report["confusion"]))
    assert {"accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class"} <= set(report)
    assert len(store.list_evaluations(run.id)) == before


def test_evaluate_with_other_classes_is_one_line_on_stderr(completed_runs, tiny_dataset, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset / "test", other / "test")
    shutil.copytree(tiny_dataset / "test", other / "train")
    for split in ("train", "test"):
        shutil.rmtree(sorted((other / split).iterdir())[0])
    done = run_cli("evaluate", "--run", str(completed_runs["visual_cnn"]), "--data", str(other), "--no-store")
    assert done.returncode == 2
    assert done.stderr.startswith("error: the dataset's classes do not match the checkpoint's (missing: ")
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
