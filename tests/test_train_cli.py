"""``python -m backend train`` as the dashboard and the run manager use it: real subprocesses, real
signals, the session's real run store."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys

import pytest
from PIL import Image

from backend import store
from backend.__main__ import main as cli
from backend.config import REPO_ROOT, run_dir
from tests.fixtures.processes import wait_for

DEADLINE_S = 180.0  # two shared cores, and every trainer imports torch
TINY_FLAGS = ["--model", "visual_cnn", "--image-size", "32", "--batch-size", "16", "--workers", "0", "--device", "cpu"]


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "backend", "train", *args]


def queued_run(config: dict) -> int:
    """A run row as the run manager or the dashboard leaves it for the trainer."""
    return store.create_run(name="queued", model=config.get("model", "?"), config=config, dataset=str(config.get("data")))


def test_train_command_trains_a_new_run_to_completion(tiny_dataset):
    result = subprocess.run(
        train_command("--data", str(tiny_dataset), *TINY_FLAGS, "--epochs", "1", "--name", "from the cli"),
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=DEADLINE_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = store.list_runs()
    run = store.get_run(int(runs.loc[runs["name"] == "from the cli", "id"].item()))
    assert run.status == "completed" and run.current_epoch == 1
    assert "epoch 1/1" in result.stdout and "completed: best epoch 1" in result.stdout
    assert "epoch 1/1" in (run_dir(run.id) / "log.txt").read_text()  # standalone: the log file is written too


def test_invalid_options_exit_2_with_one_line_and_create_no_run(tiny_dataset):
    before = len(store.list_runs())
    result = subprocess.run(train_command("--data", str(tiny_dataset), *TINY_FLAGS, "--model", "resnet18"),
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=DEADLINE_S)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: invalid training options: unknown model 'resnet18'; choose one of: resnet50, series_cnn, vae_classifier, visual_cnn"
    ]
    assert len(store.list_runs()) == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--image-size", "0"], "image_size must be between 16 and 1024 pixels, got 0"),
        (["--precision", "fp16", "--device", "cpu"], "fp16"),
        (["--epochs", "many"], "epochs must be a whole number, got 'many'"),
        (["--loss", "cb_focal", "--class-weighting", "effective"], "sets its own class weights"),
    ],
)
def test_each_bad_flag_is_reported_before_anything_trains(tiny_dataset, capsys, flags, message):
    before = len(store.list_runs())
    assert cli(["train", "--data", str(tiny_dataset), *TINY_FLAGS, *flags]) == 2
    assert message in capsys.readouterr().err
    assert len(store.list_runs()) == before


def test_missing_and_one_class_datasets_are_reported(tmp_path, capsys):
    assert cli(["train", "--data", str(tmp_path / "nowhere"), *TINY_FLAGS]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    (tmp_path / "one" / "cats").mkdir(parents=True)
    Image.new("RGB", (20, 20), "white").save(tmp_path / "one" / "cats" / "x.png")
    assert cli(["train", "--data", str(tmp_path / "one"), *TINY_FLAGS]) == 2
    assert "only one class" in capsys.readouterr().err


def test_a_run_row_with_an_invalid_config_is_marked_failed(tiny_dataset, capsys):
    run_id = queued_run({"data": str(tiny_dataset), "model": "resnet18"})
    assert cli(["train", "--run-id", str(run_id)]) == 2
    run = store.get_run(run_id)
    assert run.status == "failed"
    assert "unknown model 'resnet18'" in run.error and "unknown model 'resnet18'" in capsys.readouterr().err


def test_only_a_waiting_run_can_be_trained(completed_runs, capsys):
    run_id = completed_runs["visual_cnn"]
    before = store.get_run(run_id)
    assert cli(["train", "--run-id", str(run_id)]) == 2
    assert f"run {run_id} is completed; only a queued run can be trained" in capsys.readouterr().err
    assert store.get_run(run_id) == before
    assert cli(["train", "--run-id", "999999"]) == 2
    assert "run 999999 not found" in capsys.readouterr().err


def test_sigterm_stops_at_the_next_batch_keeps_checkpoints_and_ends_cancelled(tiny_dataset):
    config = {"data": str(tiny_dataset), "model": "visual_cnn", "image_size": 32, "batch_size": 8, "epochs": 500,
              "workers": 0, "device": "cpu"}  # fmt: skip
    run_id = queued_run(config)
    log_path = run_dir(run_id) / "log.txt"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # as the run manager starts it: output into the run's log
        trainer = subprocess.Popen(train_command("--run-id", str(run_id)), cwd=REPO_ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: (store.get_run(run_id).current_epoch or 0) >= 2, "two finished epochs", timeout=DEADLINE_S)
        running = store.get_run(run_id)
        assert running.status == "running" and running.pid == trainer.pid
        trainer.send_signal(signal.SIGTERM)
        assert trainer.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        trainer.kill()
        trainer.wait()
    run = store.get_run(run_id)
    assert run.status == "cancelled" and run.error is None and run.finished_at is not None
    assert 2 <= run.current_epoch < 500
    assert (run_dir(run_id) / "last.pt").is_file() and run.checkpoint_path == str(run_dir(run_id) / "best.pt")
    text = log_path.read_text()
    assert text.count("epoch 1/500") == 1  # stdout is the log: not written twice
    assert "cancelled; checkpoints kept: best.pt, last.pt" in text


def truncate(path) -> None:
    """Cut a PNG in half, as an interrupted copy would leave it: it opens, then fails to decode."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_failure_during_training_ends_failed_with_the_error_and_a_traceback(tiny_dataset):
    run_id = queued_run({"data": str(tiny_dataset), "model": "visual_cnn", "image_size": 32, "epochs": 1,
                         "device": "cpu"})  # fmt: skip
    (run_dir(run_id) / "best.pt").mkdir(parents=True)  # the first checkpoint cannot be written: an unexpected error
    result = subprocess.run(train_command("--run-id", str(run_id)), cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=DEADLINE_S)  # fmt: skip
    assert result.returncode == 1
    run = store.get_run(run_id)
    assert run.status == "failed" and run.finished_at is not None
    assert "best.pt" in run.error
    log = (run_dir(run_id) / "log.txt").read_text()
    assert "Traceback (most recent call last)" in log and "training failed" in log


def test_unreadable_images_in_every_split_are_one_message_without_a_traceback(tiny_dataset, tmp_path):
    dataset = shutil.copytree(tiny_dataset, tmp_path / "text_files")
    pngs = sorted(dataset.rglob("*.png"))
    for i, path in enumerate(pngs):  # distinct bytes: identical files would be dropped as cross-split copies first
        path.write_text(f"timestamp,value\n2024-01-01,{i}\n")  # text saved under a .png name
    train, test = (sum(p.is_relative_to(dataset / split) for p in pngs) for split in ("train", "test"))
    result = subprocess.run(train_command("--data", str(dataset), *TINY_FLAGS, "--epochs", "1", "--name", "text pngs"),
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=DEADLINE_S)  # fmt: skip
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "training failed" not in output
    failed = [line for line in output.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "it is a text file" in failed[0], output
    # train/ is split into train and validation (val_fraction): every file of every split is counted
    counts = re.search(r"(\d+) image\(s\) could not be read \((\d+) in train, (\d+) in val, (\d+) in test\)", failed[0])
    assert counts, failed[0]
    total, in_train, in_val, in_test = map(int, counts.groups())
    assert (total, in_train + in_val, in_test) == (train + test, train, test)
    runs = store.list_runs()
    run = store.get_run(int(runs.loc[runs["name"] == "text pngs", "id"].item()))
    assert run.status == "failed" and run.error.startswith(counts.group(0))
    assert "Traceback" not in (run_dir(run.id) / "log.txt").read_text()
