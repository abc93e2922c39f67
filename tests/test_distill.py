"""Knowledge distillation (``distill_from``, ``distill_with``): the soft targets, the honesty checks on the teacher,
that the targets reach the loss with their own images on both batch paths, and a real student
trained from a real series teacher on the session's tiny dataset.

Real parts: the tiny generated dataset, training runs in the session's store (and run rows in a
store of a test's own for the refusals), real checkpoints, the real CLI.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from backend import store
from backend.__main__ import main as cli
from backend.config import run_dir
from backend.data.csvseries import read_series_csv
from backend.device import make_runtime
from backend.models import create_model
from backend.predict_series import SeriesPredictor, open_run
from backend.runs.lifecycle import build_config, train_run
from backend.runs.teacher import check_teacher
from backend.training.checkpoint import read_checkpoint
from backend.training.config import ConfigError, TrainConfig, load_split
from backend.training.data import build_training_data
from backend.training.distill import AveragedTeacher, soft_targets, soften
from backend.training.loop import train_one_epoch
from backend.training.losses import build_loss
from backend.training.optim import build_schedule
from backend.training.series_data import series_files

TINY = {"batch_size": 16, "workers": 0, "device": "cpu", "precision": "fp32", "image_size": 32}


@pytest.fixture(scope="module")
def teacher(tiny_dataset) -> int:
    """A completed series_cnn run (3 epochs) on the tiny dataset, in the session's store."""
    result = train_run(build_config({**TINY, "epochs": 3, "data": str(tiny_dataset), "model": "series_cnn"}))
    assert result.status == "completed", store.get_run(result.run_id).error
    return result.run_id


# --- the targets ----------------------------------------------------------------------------------


def test_soften_flattens_above_one_sharpens_below_and_keeps_the_order():
    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    np.testing.assert_allclose(soften(p, 1.0), p)
    flat, sharp = soften(p, 4.0), soften(p, 0.5)
    np.testing.assert_allclose(flat.sum(axis=1), 1.0)
    assert (flat.max(axis=1) < p.max(axis=1)).all() and (sharp.max(axis=1) > p.max(axis=1)).all()
    assert (flat.argmax(axis=1) == p.argmax(axis=1)).all()
    # p^(1/T) renormalised is softmax(logits / T): the log-sum-exp shift cancels
    logits = np.log(p) + 3.0
    expected = np.exp(logits / 4.0) / np.exp(logits / 4.0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(flat, expected)


def test_soft_targets_mix_the_label_and_the_teacher_by_the_weight():
    teacher = np.array([[0.1, 0.8, 0.1], [0.6, 0.2, 0.2]])
    labels = np.array([0, 0])
    targets = soft_targets(labels, teacher, weight=0.25, temperature=1.0)
    assert targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(targets[0], [0.75 + 0.025, 0.2, 0.025], rtol=1e-6)
    np.testing.assert_allclose(soft_targets(labels, teacher, 1.0, 1.0), teacher, rtol=1e-6)  # all teacher


# --- the targets travel with their images -------------------------------------------------------


@pytest.mark.parametrize("augmentation", ["none", "light"])  # on the CPU: batch path, worker path
def test_each_training_batch_carries_the_target_rows_of_its_own_images(tiny_dataset, augmentation):
    config = TrainConfig.from_dict({**TINY, "data": str(tiny_dataset), "augmentation": augmentation, "batch_size": 8})
    split = load_split(config)
    labels = np.array([s.label for s in split.train])
    k = len(split.classes)
    # a target no label could produce: the next class's one-hot, so a misaligned row shows
    shifted = np.eye(k, dtype=np.float32)[(labels + 1) % k]
    data = build_training_data(config, split, make_runtime("cpu", "fp32"), train_targets=shifted)
    seen = 0
    for images, batch_labels, targets in data.train_batches():
        assert len(images) == len(batch_labels) and targets.shape == (len(batch_labels), k)
        assert targets.dtype == torch.float32
        assert torch.equal(targets.argmax(dim=1), (batch_labels + 1) % k)
        seen += len(batch_labels)
    assert seen == data.steps_per_epoch * config.batch_size
    plain = build_training_data(config, split, make_runtime("cpu", "fp32"))
    assert all(len(batch) == 2 for batch in plain.train_batches())


def test_the_loss_reads_the_soft_targets_and_the_accuracy_the_labels(tiny_dataset):
    config = TrainConfig.from_dict({**TINY, "data": str(tiny_dataset), "augmentation": "none", "lr": 1e-12})
    split = load_split(config)
    runtime = make_runtime("cpu", "fp32")
    torch.manual_seed(0)
    model = create_model("visual_cnn", num_classes=len(split.classes), image_size=32)
    images = torch.randn(8, 3, 32, 32)
    labels = torch.arange(8) % len(split.classes)
    targets = torch.softmax(torch.randn(8, len(split.classes)), dim=1)
    criterion = build_loss("ce", class_counts=[1] * len(split.classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-12)  # the weights stay put
    schedule = build_schedule(optimizer, config, steps_per_epoch=1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    model.train()
    with torch.no_grad():
        torch.manual_seed(1)  # the same dropout mask as the epoch's forward pass
        logits = model(images)["logits"]  # train mode: batch statistics, as in the epoch
    soft_loss, hard_loss = criterion(logits, targets).item(), criterion(logits, labels).item()
    assert abs(soft_loss - hard_loss) > 0.05
    torch.manual_seed(1)
    result = train_one_epoch(model, criterion, optimizer, [(images, labels, targets)], runtime=runtime,
                             schedule=schedule, scaler=scaler)  # fmt: skip
    assert result["loss"] == pytest.approx(soft_loss, rel=1e-4)
    assert result["acc"] == pytest.approx((logits.argmax(dim=1) == labels).float().mean().item())


# --- which teacher may teach ------------------------------------------------------------------


def _teacher_row(dataset: Path, **config) -> int:
    run_id = store.create_run(name="teacher", model="series_cnn", config={"data": str(dataset), **config},
                              dataset=str(dataset), status="completed")  # fmt: skip
    store.update_run(run_id, checkpoint_path=str(dataset / "best.pt"))
    return run_id


def test_a_teacher_must_be_completed_on_the_same_dataset_and_never_on_the_test_images(
    tiny_dataset, tmp_path, empty_store
):
    base = {**TINY, "data": str(tiny_dataset)}

    def refusal(**options) -> str:
        with pytest.raises(ConfigError) as caught:
            build_config({**base, **options})
        return str(caught.value)

    assert "run 4242 not found" in refusal(distill_from=4242)
    failed = store.create_run(name="t", model="series_cnn", config=base, dataset=str(tiny_dataset), status="failed")
    assert f"run {failed} is failed" in refusal(distill_from=failed)

    other = shutil.copytree(tiny_dataset, tmp_path / "other")
    assert "same dataset" in refusal(distill_from=_teacher_row(other))

    # A dataset without a test/ folder: the test split is drawn by seed, so a teacher with another
    # seed trained on some of this run's test images.
    flat = tmp_path / "flat"
    for png in (tiny_dataset / "train").rglob("*.png"):
        (flat / png.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, flat / png.parent.name / png.name)
    other_seed = _teacher_row(flat, seed=1)
    message = refusal(data=str(flat), distill_from=other_seed)
    assert "test images" in message and "would pass their labels on" in message
    same_seed = _teacher_row(flat, seed=0)
    assert build_config({**base, "data": str(flat), "distill_from": same_seed}).distill_from == same_seed

    teacher = _teacher_row(tiny_dataset)
    assert "distill_weight must be in (0, 1]" in refusal(distill_from=teacher, distill_weight=0)
    assert "distill_temperature must be between 0.5 and 10" in refusal(distill_from=teacher, distill_temperature=20)
    assert "MixUp / CutMix" in refusal(distill_from=teacher, mixup_alpha=0.2)
    assert "distill_from must be a run id" in refusal(distill_from=-1)

    # A second teacher (distill_with) passes the same checks, and names itself in the message.
    assert "set distill_from to the first" in refusal(distill_with=teacher)
    assert "both name run" in refusal(distill_from=teacher, distill_with=teacher)
    assert "distill_with must be a run id" in refusal(distill_from=teacher, distill_with=-2)
    assert refusal(distill_from=teacher, distill_with=failed).startswith(f"distill_with: run {failed} is failed")
    assert "distill_with: run 4243 not found" in refusal(distill_from=teacher, distill_with=4243)


def test_the_teacher_pickers_mark_a_cloned_teacher_that_can_no_longer_teach_with_why(tiny_dataset, empty_store):
    from dashboard.train_form import teacher_choices

    first, second = _teacher_row(tiny_dataset), _teacher_row(tiny_dataset)
    failed = store.create_run(name="t", model="series_cnn", config={}, dataset=str(tiny_dataset), status="failed")
    runs = store.list_runs()
    assert list(teacher_choices(runs, str(tiny_dataset))) == [0, second, first]
    assert list(teacher_choices(runs, str(tiny_dataset), exclude=first)) == [0, second]
    # A clone keeps its teachers, listed with the reason validation will give.
    assert teacher_choices(runs, str(tiny_dataset), current=failed)[failed] == (
        f"#{failed} (not a completed run on this dataset)")  # fmt: skip
    clone = teacher_choices(runs, str(tiny_dataset), current=first, exclude=first)
    assert clone[first] == f"#{first} (already the first teacher)", clone


def test_the_cli_refuses_a_missing_teacher_before_anything_trains(tiny_dataset, capsys):
    before = len(store.list_runs())
    assert cli(["train", "--data", str(tiny_dataset), "--model", "visual_cnn", "--distill-from", "987654"]) == 2
    assert "distill_from: run 987654 not found" in capsys.readouterr().err
    assert len(store.list_runs()) == before


# --- a real student -----------------------------------------------------------------------------


def test_a_student_trains_from_a_series_teacher_and_records_how_far_it_agrees(tiny_dataset, teacher):
    config = build_config({**TINY, "epochs": 1, "data": str(tiny_dataset), "model": "visual_cnn",
                           "distill_from": teacher, "distill_weight": 0.7, "distill_temperature": 2.0})  # fmt: skip
    result = train_run(config)
    run = store.get_run(result.run_id)
    assert result.status == "completed", run.error
    summary = run.test_metrics["distillation"]
    assert summary["teacher_run"] == teacher and summary["weight"] == 0.7 and summary["temperature"] == 2.0

    # The summary is the teacher's own predictions on the student's training items, read from their CSVs.
    split = load_split(config, drop_duplicates=True)
    labels = np.array([s.label for s in split.train])
    predictor = SeriesPredictor.from_run(teacher, device="cpu")
    order = [predictor.class_names.index(name) for name in split.classes]
    values = [read_series_csv(path).values for path in series_files(split, ("train",))["train"]]
    probabilities = predictor.predict_series(values)[:, order]
    assert summary["teacher_train_accuracy"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == labels))
    true_class = probabilities[np.arange(len(labels)), labels]
    assert summary["teacher_true_class_probability"] == pytest.approx(true_class.mean(), rel=1e-5)
    assert summary["softened_true_class_probability"] < summary["teacher_true_class_probability"]
    assert read_checkpoint(run.checkpoint_path)["config"]["distill_from"] == teacher
    assert f"distilling from run {teacher} (series_cnn)" in (run_dir(run.id) / "log.txt").read_text()


def test_a_teacher_whose_checkpoint_is_gone_fails_the_student_with_a_message(tiny_dataset, empty_store):
    gone = _teacher_row(tiny_dataset)  # completed, but its checkpoint file was never there
    result = train_run(build_config({**TINY, "epochs": 1, "data": str(tiny_dataset), "distill_from": gone}))
    run = store.get_run(result.run_id)
    assert result.status == "failed"
    assert run.error.startswith(f"distill_from: run {gone}'s checkpoint") and "is missing" in run.error, run.error
    assert "Traceback" not in (run_dir(run.id) / "log.txt").read_text()


def test_a_student_of_two_teachers_learns_their_average(tiny_dataset, teacher):
    """distill_with: a series teacher and an image teacher, their calibrated probabilities averaged
    (the ensemble the Predict page offers for CSVs, as one teacher)."""
    image = train_run(build_config({**TINY, "epochs": 1, "data": str(tiny_dataset), "model": "visual_cnn"}))
    assert image.status == "completed", store.get_run(image.run_id).error
    config = build_config({**TINY, "epochs": 1, "data": str(tiny_dataset), "model": "visual_cnn",
                           "distill_from": teacher, "distill_with": image.run_id})  # fmt: skip
    result = train_run(config)
    run = store.get_run(result.run_id)
    assert result.status == "completed", run.error
    summary = run.test_metrics["distillation"]
    assert summary["teacher_run"] == teacher and summary["teacher_runs"] == [teacher, image.run_id]

    # What the student was taught is the mean of both teachers' own predictions on its training items.
    split = load_split(config, drop_duplicates=True)
    labels = np.array([s.label for s in split.train])
    series = SeriesPredictor.from_run(teacher, device="cpu")
    values = [read_series_csv(path).values for path in series_files(split, ("train",))["train"]]
    from_series = series.predict_series(values)[:, [series.class_names.index(c) for c in split.classes]]
    pictures = open_run(image.run_id, "cpu")
    answers = pictures.predict_files([(str(s.path), s.path) for s in split.train])
    from_images = np.array([[a.probabilities[c] for c in split.classes] for a in answers])
    taught = check_teacher(config)
    assert isinstance(taught, AveragedTeacher) and taught.run_ids == [teacher, image.run_id]
    probabilities = taught.probabilities(split, split.classes)
    np.testing.assert_allclose(probabilities, (from_series + from_images) / 2, atol=1e-6)
    for alone in (from_series, from_images):  # the teachers differ item by item, so the mean is neither
        assert np.abs(probabilities - alone).max() > 1e-3
    true_class = probabilities[np.arange(len(labels)), labels]
    assert summary["teacher_true_class_probability"] == pytest.approx(true_class.mean(), rel=1e-5)
    assert summary["teacher_train_accuracy"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == labels))
    log = (run_dir(run.id) / "log.txt").read_text()
    assert f"distilling from run {teacher} (series_cnn) + run {image.run_id} (visual_cnn), averaged" in log
