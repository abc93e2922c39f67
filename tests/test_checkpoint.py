"""Checkpoints: plain dicts that load with ``weights_only=True``, rebuild the model that was evaluated,
are written atomically, and reject files that are not checkpoints with a clear message."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from backend import store
from backend.config import run_dir
from backend.data.cache import load_dataset_cache
from backend.data.dataset import scan_dataset
from backend.data.plotarea import PLOT_AREA_VERSION
from backend.device import make_runtime
from backend.models import create_model
from backend.runs.lifecycle import build_config, train_run
from backend.training.checkpoint import (
    FORMAT_VERSION,
    REQUIRED_KEYS,
    CheckpointError,
    build_checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from backend.training.data import NORMALIZATION, to_model_input
from tests.fixtures.runs import EPOCHS

CLASSES = ["a", "b", "c"]


def checkpoint_of(model, **overrides) -> dict:
    fields = dict(class_names=CLASSES, image_size=32, normalization=NORMALIZATION, epoch=3,
                  metrics={"val_f1": np.float32(0.5), "val_acc": np.float64(0.6)},
                  config={"data": Path("/data/set"), "sizes": (1, 2)}, run_id=7)  # fmt: skip
    return build_checkpoint(model, **{**fields, **overrides})


@pytest.mark.parametrize("name, kwargs", [("visual_cnn", {"width": 8}), ("vae_classifier", {"latent_dim": 8})])
def test_checkpoint_loads_with_weights_only_and_predicts_as_before(tmp_path, name, kwargs):
    model = create_model(name, num_classes=3, image_size=32, **kwargs).eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        before = model(images)["logits"]
    path = save_checkpoint(tmp_path / "best.pt", checkpoint_of(model))

    raw = torch.load(path, weights_only=True)
    assert set(REQUIRED_KEYS) <= set(raw) and raw["format_version"] == FORMAT_VERSION
    assert (raw["model_name"], raw["model_kwargs"]) == (name, model.model_kwargs)
    assert raw["class_names"] == CLASSES and raw["run_id"] == 7 and raw["epoch"] == 3
    assert type(raw["metrics"]["val_f1"]) is float  # numpy turned into plain values
    assert raw["config"] == {"data": "/data/set", "sizes": [1, 2]}

    loaded, meta = load_checkpoint(path)
    assert not loaded.training
    with torch.inference_mode():
        after = loaded(images)["logits"]
    assert torch.equal(before, after)
    assert meta["normalization"] == NORMALIZATION


def _assert_checkpoint_reproduces_the_runs_predictions(run_id: int) -> None:
    """best.pt, rebuilt from the file alone, predicts the test split as test_predictions.csv says."""
    run = store.get_run(run_id)
    model, checkpoint = load_checkpoint(run.checkpoint_path)
    assert checkpoint["class_names"] == run.class_names and checkpoint["run_id"] == run_id
    assert checkpoint["epoch"] == run.best_epoch and checkpoint["config"] == run.config
    # new runs record their crop, polarity, resize, aspect and this build's plot-area finder
    assert checkpoint["preprocessing"] == {"crop": run.config["crop"], "polarity": run.config["polarity"],
                                           "finder": PLOT_AREA_VERSION, "resize": run.config["resize"],
                                           "aspect": run.config["aspect"]}
    assert run.config["aspect"] == 1.0  # square unless asked
    expected = pd.read_csv(run_dir(run_id) / "test_predictions.csv")
    images = load_dataset_cache([Path(f) for f in expected["file"]], checkpoint["image_size"],
                                preprocessing=checkpoint["preprocessing"])  # as the run trained
    with torch.inference_mode():
        logits = model(to_model_input(images, make_runtime("cpu", "fp32")))["logits"]
    # The CSV holds calibrated probabilities: logits divided by the temperature fitted on validation.
    assert checkpoint["temperature"] == pytest.approx(run.temperature) and checkpoint["temperature"] > 0
    probs = (logits / checkpoint["temperature"]).softmax(dim=1).numpy()
    assert np.allclose(probs, expected[[f"prob_{c}" for c in run.class_names]].to_numpy(), atol=1e-4)


@pytest.mark.parametrize("model", sorted(EPOCHS))
def test_each_models_best_checkpoint_predicts_what_the_run_reported(completed_runs, model):
    _assert_checkpoint_reproduces_the_runs_predictions(completed_runs[model])


def test_with_ema_the_checkpoint_holds_the_averaged_weights_that_were_evaluated(tiny_dataset):
    config = build_config({"data": str(tiny_dataset), "model": "visual_cnn", "image_size": 32, "epochs": 1,
                           "batch_size": 16, "ema_decay": 0.5, "precision": "fp32", "device": "cpu"})  # fmt: skip
    result = train_run(config)
    assert result.status == "completed"
    _assert_checkpoint_reproduces_the_runs_predictions(result.run_id)


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path):
    model = create_model("visual_cnn", num_classes=3, image_size=32, width=4)
    path = save_checkpoint(tmp_path / "last.pt", checkpoint_of(model))
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises for an unpicklable value
        save_checkpoint(path, {**checkpoint_of(model), "metrics": {"bad": lambda: None}})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind


def test_checkpoints_from_before_calibration_read_back_uncalibrated(tmp_path):
    model = create_model("visual_cnn", num_classes=3, image_size=32, width=4)
    old = {key: value for key, value in checkpoint_of(model).items() if key not in {"temperature", "uncertainty"}}
    torch.save(old, tmp_path / "old.pt")
    loaded, meta = load_checkpoint(tmp_path / "old.pt")
    assert meta["temperature"] == 1.0 and meta["uncertainty"] is None
    assert not loaded.training


def test_files_that_are_not_checkpoints_get_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "missing.pt")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a checkpoint of this product \\(not a file torch.save wrote\\)"):
        read_checkpoint(text)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="holds a Tensor"):
        read_checkpoint(tensor)
    state_dict = tmp_path / "state.pt"
    torch.save(create_model("visual_cnn", num_classes=3, image_size=32, width=4).state_dict(), state_dict)
    with pytest.raises(CheckpointError, match="missing: format_version, model_name"):
        read_checkpoint(state_dict)
    future = tmp_path / "future.pt"
    model = create_model("visual_cnn", num_classes=3, image_size=32, width=4)
    torch.save({**checkpoint_of(model), "format_version": FORMAT_VERSION + 1}, future)
    with pytest.raises(CheckpointError, match="newer than this code reads"):
        read_checkpoint(future)
    wrong = tmp_path / "wrong.pt"
    torch.save({**checkpoint_of(model), "model_kwargs": {"width": 16}}, wrong)
    with pytest.raises(CheckpointError, match="cannot rebuild the model"):
        load_checkpoint(wrong)


def test_checkpoints_hold_the_run_config_and_class_list_not_todays_defaults(completed_runs):
    run = store.get_run(completed_runs["vae_classifier"])
    checkpoint = read_checkpoint(run_dir(run.id) / "last.pt")
    assert checkpoint["class_names"] == run.class_names == sorted(run.class_names)
    assert checkpoint["model_kwargs"]["latent_dim"] == run.config["model_kwargs"]["latent_dim"]
    assert checkpoint["epoch"] == EPOCHS["vae_classifier"]
    assert scan_dataset(run.dataset).classes == checkpoint["class_names"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda good: b"", r"best\.pt is empty \(0 bytes\)"),
        (lambda good: good[: len(good) // 2], r"best\.pt is truncated: its [0-9,]+ bytes end before the archive does"),
        (lambda good: b"GIF89a not weights", r"best\.pt is not a checkpoint of this product \(not a file torch"),
        (lambda good: None, r"best\.pt is not a checkpoint of this product \(it holds objects beyond tensors"),
    ],
    ids=["empty", "truncated", "foreign-bytes", "foreign-pickle"],
)
def test_a_broken_best_pt_is_named_in_our_words_and_points_at_last_pt(tmp_path, content, message):
    model = create_model("visual_cnn", num_classes=3, image_size=32, width=4)
    last = save_checkpoint(tmp_path / "last.pt", {**checkpoint_of(model), "epoch": 7})
    best = tmp_path / "best.pt"
    data = content(last.read_bytes())
    if data is None:
        torch.save({"model": argparse.Namespace(lr=0.1)}, best)  # a pickled object weights_only refuses
    else:
        best.write_bytes(data)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(best)
    text = str(caught.value)
    assert re.search(message, text), text
    assert text.endswith(f"; {last} (epoch 7) does load: use that file instead")
    assert "weights_only" not in text and "\n" not in text
    last.unlink()  # without a readable last.pt, no hint
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(best)
    assert "does load" not in str(caught.value)
