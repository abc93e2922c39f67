"""The training engine on tiny real data: config validation, every loop option, both data paths,
and everything a completed run leaves in the run store and in its artifacts folder."""

from __future__ import annotations

import argparse
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from backend import store
from backend.cli.train import add_arguments
from backend.config import run_dir
from backend.data.dataset import scan_dataset
from backend.device import Runtime, make_runtime
from backend.models import count_parameters, create_model, model_defaults
from backend.runs.lifecycle import build_config, train_run
from backend.training.config import FIELD_NAMES, ConfigError, TrainConfig, load_split
from backend.training.data import build_training_data, class_presets, uses_batch_path
from backend.training.loop import loss_terms, train_one_epoch
from backend.training.losses import build_loss
from backend.training.metrics import RunningMeans
from backend.training.optim import build_optimizer, build_schedule
from backend.training.regularize import build_ema, build_sampler, ema_decay_at
from tests.fixtures.runs import EPOCHS

TINY = {"image_size": 32, "batch_size": 16, "epochs": 1, "workers": 0, "device": "cpu"}


def tiny(dataset, **options) -> dict:
    return {**TINY, "data": str(dataset), "model": "visual_cnn", **options}


def make_dataset(root, classes: dict[str, int], test_per_class: int = 2, pixel=None):
    """A real folder dataset of small PNGs: random noise, or one flat colour everywhere (``pixel``)."""
    rng = np.random.default_rng(0)
    for split, counts in (("train", classes), ("test", dict.fromkeys(classes, test_per_class))):
        for name, count in counts.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = np.full((24, 24, 3), pixel, np.uint8) if pixel is not None else rng.integers(0, 256, (24, 24, 3), np.uint8)
                # Same pixels may repeat; the bytes never do (a copy across splits would be dropped).
                Image.fromarray(image).save(folder / f"{i}.png", pnginfo=_png_text(f"{split}/{name}/{i}"))
    return root


def _png_text(text: str) -> PngInfo:
    info = PngInfo()
    info.add_text("id", text)
    return info


# --- config ----------------------------------------------------------------------------------------


def test_model_defaults_fill_only_the_options_the_user_left_unset(tiny_dataset):
    cnn = build_config({"data": str(tiny_dataset), "model": "visual_cnn"})
    for key, value in model_defaults("visual_cnn").items():
        assert getattr(cnn, key) == value
    resnet = build_config({"data": str(tiny_dataset), "model": "resnet50", "image_size": 64})
    assert resnet.image_size == 64  # set by the user
    assert resnet.scheduler == model_defaults("resnet50")["scheduler"]  # from the model
    vae = build_config({"data": str(tiny_dataset), "model": "vae_classifier", "model_kwargs": {"latent_dim": 16}})
    assert vae.model_kwargs == {**model_defaults("vae_classifier")["model_kwargs"], "latent_dim": 16}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": "resnet18"}, "unknown model 'resnet18'; choose one of: resnet50, series_cnn, vae_classifier, visual_cnn"),
        ({"image_size": 0}, "image_size must be between 16 and 1024"),
        ({"precision": "fp16"}, "fp16"),
        ({"device": "cuda"} if not torch.cuda.is_available() else {"precision": "fp8"}, "cuda"),
        ({"loss": "cb_focal", "class_weighting": "balanced"}, "sets its own class weights"),
        ({"nesterov": True, "optimizer": "adam"}, "nesterov needs optimizer sgd"),
        ({"model": "vae_classifier", "model_kwargs": {"latent_dim": 1}}, "latent_dim must be"),
        ({"model_kwargs": {"latent_dim": 8}}, "has no option latent_dim"),
        ({"model": "resnet50", "model_kwargs": {"weights_file": "/nonexistent/w.pt"}}, "does not exist"),
        ({"lr": "fast"}, "lr must be a number, got 'fast'"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"learning_rate": 0.1}, "unknown option(s): learning_rate"),
        ({"scheduler": "step"}, "unknown scheduler 'step'; choose one of: cosine, none, onecycle, plateau"),
        ({"augmentation": "extreme"}, "unknown augmentation preset 'extreme'"),
        ({"sampler": "balanced"}, "unknown sampler 'balanced'"),
        ({"scheduler": "cosine", "warmup_epochs": 1}, "warmup_epochs must be in [0, epochs=1)"),
        ({"severity": True, "augmentation": "plot"}, "'plot' is not on that ladder"),
        ({"val_fraction": 0.0}, "val_fraction must be in (0, 1), e.g. 0.15; got 0.0"),
    ],
)
def test_bad_options_fail_before_training_saying_what_to_change(tiny_dataset, change, message):
    with pytest.raises(ConfigError) as error:
        build_config(tiny(tiny_dataset, **change))
    assert message in str(error.value)


def test_dataset_problems_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no dataset given"):
        build_config({"model": "visual_cnn"})
    with pytest.raises(ConfigError, match="dataset folder not found"):
        build_config({"data": str(tmp_path / "missing")})
    one_class = make_dataset(tmp_path / "one", {"only": 3})
    with pytest.raises(ConfigError, match="only one class 'only'"):
        build_config({"data": str(one_class)})


def test_a_bare_dataset_name_is_found_under_data_dir(tmp_path, monkeypatch):
    make_dataset(tmp_path / "datasets" / "mine", {"a": 2, "b": 2})
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "datasets"))
    config = build_config({"data": "mine", "image_size": 32})
    assert config.data == str((tmp_path / "datasets" / "mine").resolve())


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_file_then_flags_override_it(tiny_dataset, tmp_path, suffix):
    file_options = {"data": str(tiny_dataset), "model": "vae_classifier", "epochs": 3, "lr": "2e-4",
                    "model_kwargs": {"latent_dim": 32, "kl_weight": 0.5}}  # fmt: skip
    path = tmp_path / f"options{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(file_options))
    else:  # YAML reads 2e-4 as text: the config converts it
        path.write_text("\n".join([f"data: {tiny_dataset}", "model: vae_classifier", "epochs: 3", "lr: 2e-4",
                                   "model_kwargs:", "  latent_dim: 32", "  kl_weight: 0.5"]))  # fmt: skip
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", str(path), "--epochs", "5", "--latent-dim", "16", "--no-severity"])
    config = build_config(args)
    assert (config.epochs, config.lr, config.severity) == (5, 2e-4, False)
    assert config.model_kwargs["latent_dim"] == 16  # flag over file
    assert config.model_kwargs["kl_weight"] == 0.5  # file kept
    assert config.model_kwargs["recon_weight"] == model_defaults("vae_classifier")["model_kwargs"]["recon_weight"]
    stored = config.to_dict()
    assert set(stored) == set(FIELD_NAMES)
    assert TrainConfig.from_dict(json.loads(json.dumps(stored))) == config  # stored whole, rebuilt the same


# --- completed runs (one per model family, from the session fixture) -----------------------------------


@pytest.mark.parametrize("model", sorted(EPOCHS))
def test_each_model_trains_end_to_end_and_leaves_its_rows_and_files(completed_runs, tiny_dataset, model):
    run = store.get_run(completed_runs[model])
    info = load_split(TrainConfig(**run.config))
    k, n_test = len(info.classes), len(info.test)
    assert run.status == "completed" and run.error is None and run.finished_at is not None
    assert run.class_names == info.classes
    assert run.class_counts == {split: info.counts(split) for split in ("train", "val", "test")}
    assert run.selection_split == "validation"
    assert run.split_counts == {"train": len(info.train), "val": len(info.val), "test": n_test,
                                "duplicates_removed": {"train": 0, "val": 0, "test": 0}}  # fmt: skip
    assert run.current_epoch == run.total_epochs == EPOCHS[model]
    assert run.num_params == count_parameters(create_model(model, num_classes=k, image_size=32, **run.config["model_kwargs"]))
    assert "cpu" in run.device

    history = store.run_history(run.id)
    assert list(history["epoch"]) == list(range(1, EPOCHS[model] + 1))
    numbers = history[["train_loss", "train_acc", "val_loss", "val_acc", "val_precision", "val_recall", "val_f1", "lr", "seconds"]]
    assert np.isfinite(numbers.to_numpy()).all()
    components = {"class", "recon", "kl"} if model == "vae_classifier" else {"class"}
    quality = {"quality_val_recon_psnr"} if model == "vae_classifier" else set()  # figures, not loss terms
    for _, row in history.iterrows():
        assert set(row["extra"]) == {f"{split}_{c}" for split in ("train", "val") for c in components} | quality
        assert math.isclose(sum(row["extra"][f"train_{c}"] for c in components), row["train_loss"], rel_tol=1e-4)
    if model == "vae_classifier":  # the test report carries the reconstruction's PSNR (dB) on test
        assert 0 < run.test_metrics["recon_psnr"] <= 60
    else:
        assert "recon_psnr" not in run.test_metrics

    assert run.best_val_f1 == pytest.approx(history["val_f1"].max())
    assert run.best_epoch == int(history.loc[history["val_f1"].idxmax(), "epoch"])
    assert run.train_acc_at_best == pytest.approx(history.loc[history["epoch"] == run.best_epoch, "train_acc"].item())
    folder = run_dir(run.id)
    assert run.checkpoint_path == str(folder / "best.pt")
    assert (folder / "best.pt").is_file() and (folder / "last.pt").is_file()
    assert "epoch 1/" in (folder / "log.txt").read_text()

    predictions = pd.read_csv(folder / "test_predictions.csv")
    assert list(predictions.columns) == ["file", "path", "item_hash", "true", "predicted", "confidence"] + [
        f"prob_{c}" for c in info.classes
    ]
    assert sorted(predictions["file"]) == sorted(str(s.path) for s in info.test)
    assert all((tiny_dataset / path).is_file() for path in predictions["path"])  # relative to the dataset root
    probs = predictions[[f"prob_{c}" for c in info.classes]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.allclose(predictions["confidence"], probs.max(axis=1), atol=1e-6)
    # The stored report is the best model's on test: its accuracy and confusion are those of the CSV.
    assert (predictions["true"] == predictions["predicted"]).mean() == pytest.approx(run.test_metrics["accuracy"])
    names, matrix = store.confusion(run.id)
    assert names == info.classes and matrix.shape == (k, k) and matrix.sum() == n_test
    expected = pd.crosstab(predictions["true"], predictions["predicted"]).reindex(index=names, columns=names, fill_value=0)
    assert (matrix == expected.to_numpy()).all()
    per_class = store.class_metrics(run.id)
    assert list(per_class["class_name"]) == info.classes
    assert per_class["support"].sum() == n_test


# --- every option trains and stays finite ------------------------------------------------------------

OPTION_SETS = {
    "focal, weighted sampler, mixup": {"loss": "focal", "gamma": 2.0, "sampler": "weighted", "mixup_alpha": 0.4},
    "cb_focal, cutmix, ema": {"loss": "cb_focal", "beta": 0.99, "cutmix_alpha": 1.0, "ema_decay": 0.9},
    "logit_adjusted, balanced weights, grad clip, cosine warm-up": {
        "loss": "logit_adjusted", "tau": 1.0, "class_weighting": "balanced", "grad_clip": 1.0,
        "scheduler": "cosine", "warmup_epochs": 1, "epochs": 2},
    "ce, effective weights, smoothing, sgd nesterov, plateau": {
        "class_weighting": "effective", "label_smoothing": 0.1, "optimizer": "sgd", "nesterov": True,
        "momentum": 0.9, "scheduler": "plateau", "weight_decay": 1e-4},
    "mixup and cutmix, onecycle, adamw, per-class severity": {
        "mixup_alpha": 0.2, "cutmix_alpha": 1.0, "scheduler": "onecycle", "optimizer": "adamw", "severity": True},
    "heavy preset in a worker process, no scheduler, bf16 where supported": {
        "augmentation": "heavy", "workers": 1, "scheduler": "none", "precision": "auto"},
}  # fmt: skip


@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
def test_every_training_option_runs_with_finite_losses(tiny_dataset, options):
    config = build_config(tiny(tiny_dataset, **options))
    result = train_run(config)
    run = store.get_run(result.run_id)
    assert result.status == "completed", run.error
    history = store.run_history(result.run_id)
    assert len(history) == config.epochs
    losses = history[["train_loss", "val_loss"]].to_numpy().tolist() + [list(e.values()) for e in history["extra"]]
    assert all(math.isfinite(v) for row in losses for v in row)


def test_early_stopping_ends_the_run_once_val_f1_stops_improving(tmp_path):
    # Every image is the same flat grey, so every prediction (and the macro-F1) is the same each epoch.
    dataset = make_dataset(tmp_path / "flat", {"a": 4, "b": 4}, pixel=128)
    result = train_run(build_config(tiny(dataset, epochs=6, early_stopping_patience=2, augmentation="none")))
    assert result.status == "completed"
    history = store.run_history(result.run_id)
    assert list(history["epoch"]) == [1, 2, 3]  # best at 1, then two epochs without improvement
    assert store.get_run(result.run_id).best_epoch == 1


# --- the loop's parts ------------------------------------------------------------------------------


def test_running_means_weight_each_batch_by_its_size():
    means = RunningMeans()
    means.update({"loss": torch.tensor(1.0)}, n=1)
    means.update({"loss": torch.tensor(4.0)}, n=3)
    assert means.means() == {"loss": pytest.approx(3.25)}


def _one_batch_parts(tiny_dataset, **options):
    config = build_config(tiny(tiny_dataset, augmentation="none", precision="fp32", **options))
    runtime = make_runtime("cpu", "fp32")
    data = build_training_data(config, scan_dataset(tiny_dataset), runtime)
    images, labels = next(data.train_batches())
    model = create_model("visual_cnn", num_classes=len(data.class_names), image_size=32)
    criterion = build_loss("ce", class_counts=np.bincount(data.train_labels).tolist())
    optimizer = build_optimizer(model, config)
    return config, runtime, model, criterion, optimizer, [(images, labels)]


def test_train_one_epoch_can_overfit_one_small_batch(tiny_dataset):
    config, runtime, model, criterion, optimizer, batch = _one_batch_parts(tiny_dataset, lr=3e-3, scheduler="none")
    schedule = build_schedule(optimizer, config, steps_per_epoch=1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    losses = [train_one_epoch(model, criterion, optimizer, batch, runtime=runtime, schedule=schedule, scaler=scaler)["loss"]
              for _ in range(30)]  # fmt: skip
    assert losses[-1] < 0.3 * losses[0]


def test_ema_weights_trail_the_trained_weights(tiny_dataset):
    config, runtime, model, criterion, optimizer, batch = _one_batch_parts(tiny_dataset, scheduler="none")
    assert build_ema(model, 0.0) is None
    ema = build_ema(model, 0.5)
    schedule = build_schedule(optimizer, config, steps_per_epoch=1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    for _ in range(3):
        train_one_epoch(model, criterion, optimizer, batch, runtime=runtime, schedule=schedule, scaler=scaler, ema=ema)
    trained, averaged = model.state_dict(), ema.module.state_dict()
    weight = "features.0.0.weight"
    assert torch.isfinite(averaged[weight]).all()
    assert not torch.equal(trained[weight], averaged[weight])


def test_the_ema_follows_the_model_at_first_and_reaches_its_decay_later():
    """Warmed up: after the copy, update n mixes in the model with weight 1 - min(decay, (1+n)/(10+n)),
    so a long decay does not keep the random start (0.999 ** 430 = 65% of it, the old behaviour)."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = build_ema(model, 0.999)
    expected = None
    for n in range(400):
        with torch.no_grad():
            model[0].weight.fill_(float(n))  # the trained weights move every step
            model[1].running_mean.fill_(float(n))
        ema.update_parameters(model)
        d = ema_decay_at(0.999, n)
        expected = 0.0 if n == 0 else d * expected + (1 - d) * n
        if n == 3:  # three steps in, the average sits near the model, not near its start
            assert ema.module[0].weight[0, 0].item() == pytest.approx(expected) and expected > 2.0
    assert ema.module[0].weight[0, 0].item() == pytest.approx(expected, rel=1e-4)
    assert ema.module[1].running_mean[0].item() == pytest.approx(expected, rel=1e-4)  # buffers too
    assert 300 < expected < 399  # trails the model by about the warmed-up horizon, holds no start
    assert ema_decay_at(0.999, 1) == pytest.approx(2 / 11) and ema_decay_at(0.999, 10_000) == 0.999
    assert int(ema.module[1].num_batches_tracked) == 0  # an integer buffer averages without failing


def test_loss_terms_add_the_models_weighted_auxiliary_losses():
    model = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=8, class_weight=2.0)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    criterion = build_loss("ce", class_counts=[2, 1, 1])
    outputs = model(images)
    terms = loss_terms(model, criterion, outputs, images, labels)
    assert set(terms) == {"class", "recon", "kl"}
    assert terms["class"].item() == pytest.approx(2.0 * criterion(outputs["logits"], labels).item())


# --- data paths --------------------------------------------------------------------------------------


def test_batch_path_is_used_where_the_device_can_augment_alone():
    cpu = make_runtime("cpu", "fp32")
    cuda = Runtime(device=torch.device("cuda"), dtype=torch.bfloat16, channels_last=True)  # a description only
    assert uses_batch_path(["none", "none"], cpu)
    assert not uses_batch_path(["light", "light"], cpu)
    assert uses_batch_path(["light", "light"], cuda)
    assert not uses_batch_path(["medium"], cuda)
    assert not uses_batch_path(["light", "medium"], cuda)


@pytest.mark.parametrize("polarity", ["none", "light"])
def test_the_plot_preset_inverts_only_runs_that_keep_dark_plots(tiny_dataset, polarity):
    """A run with polarity light sees only light faces, so its loader's plot pipelines carry no inversion."""
    import albumentations as A

    config = build_config(tiny(tiny_dataset, augmentation="plot", polarity=polarity, batch_size=8))
    data = build_training_data(config, scan_dataset(tiny_dataset), make_runtime("cpu", "fp32"))
    pipelines = data.loader.dataset.transforms
    inverts = [any(isinstance(t, A.InvertImg) for t in pipeline.transforms) for pipeline in pipelines]
    assert inverts == [polarity == "none"] * len(pipelines)


@pytest.mark.parametrize("augmentation, workers", [("none", 0), ("light", 0), ("medium", 1)])
def test_batches_are_normalised_channels_last_on_the_device(tiny_dataset, augmentation, workers):
    config = build_config(tiny(tiny_dataset, augmentation=augmentation, workers=workers, batch_size=8))
    runtime = make_runtime("cpu", "fp32")
    info = scan_dataset(tiny_dataset)
    data = build_training_data(config, info, runtime)
    assert (data.loader is None) == (augmentation == "none")
    batches = list(data.train_batches())
    assert len(batches) == data.steps_per_epoch == len(info.train) // 8
    images, labels = batches[0]
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert labels.dtype == torch.int64 and set(labels.tolist()) <= set(range(len(info.classes)))
    assert -3.0 < images.min() < images.max() < 3.0  # ImageNet-normalised, not 0-255
    test = list(data.eval_batches("test", batch_size=5))
    assert torch.cat([y for _, y in test]).tolist() == [s.label for s in info.test]


def test_per_class_severity_gives_minority_classes_a_heavier_preset(tiny_dataset):
    config = build_config(tiny(tiny_dataset, augmentation="light", severity=True))
    assert class_presets(config, [100, 100, 20]) == ["light", "light", "medium"]
    assert class_presets(build_config(tiny(tiny_dataset, augmentation="light")), [100, 20]) == ["light", "light"]


def test_weighted_sampler_draws_every_class_about_equally():
    labels = np.array([0] * 900 + [1] * 100)
    drawn = labels[list(build_sampler("weighted", labels, torch.Generator().manual_seed(0)))]
    assert 0.4 < drawn.mean() < 0.6
    shuffled = labels[list(build_sampler("none", labels, torch.Generator().manual_seed(0)))]
    assert sorted(shuffled) == sorted(labels)


def test_batch_path_flips_on_the_device_what_it_gathered(tiny_dataset):
    # The flips the CUDA batch path applies for "light", exercised here on the CPU device.
    config = build_config(tiny(tiny_dataset, augmentation="none", batch_size=8))
    runtime = make_runtime("cpu", "fp32")
    plain = build_training_data(config, scan_dataset(tiny_dataset), runtime)
    flipped = build_training_data(config, scan_dataset(tiny_dataset), runtime)
    flipped.flips = (1.0, 0.0)  # every image left-right, none up-down
    (a, a_labels), (b, b_labels) = next(plain.train_batches()), next(flipped.train_batches())
    assert torch.equal(a_labels, b_labels)
    assert torch.equal(b, a.flip(3)) and not torch.equal(a, b)


# --- three splits: selection on validation, test read once ------------------------------------------


def test_a_run_reads_its_test_split_once_after_its_last_epoch(tmp_path, monkeypatch):
    """Watched from outside the loop: which split each evaluation pass reads, against epochs trained."""
    from backend.training import data as data_module
    from backend.training import loop

    reads, epochs_done = [], []
    real_eval_batches, real_train_one_epoch = data_module.TrainingData.eval_batches, loop.train_one_epoch

    def eval_batches(self, split, *args, **kwargs):
        reads.append((split, len(epochs_done)))
        return real_eval_batches(self, split, *args, **kwargs)

    def train_one_epoch(*args, **kwargs):
        epochs_done.append(1)
        return real_train_one_epoch(*args, **kwargs)

    monkeypatch.setattr(data_module.TrainingData, "eval_batches", eval_batches)
    monkeypatch.setattr(loop, "train_one_epoch", train_one_epoch)
    dataset = make_dataset(tmp_path / "ds", {"a": 8, "b": 8})
    result = train_run(build_config(tiny(dataset, epochs=3, batch_size=4, val_fraction=0.25)))
    assert result.status == "completed", store.get_run(result.run_id).error

    assert [r for r in reads if r[0] == "val"] == [("val", 1), ("val", 2), ("val", 3)]
    assert [r for r in reads if r[0] == "test"] == [("test", 3)]  # once, after the third and last epoch
    assert reads.index(("test", 3)) > reads.index(("val", 3))
    run = store.get_run(result.run_id)
    assert run.test_metrics["evaluations"] == [{"split": "val", "epoch": e} for e in (1, 2, 3)] + [
        {"split": "test", "epoch": 3}
    ]
    assert "evaluating the test split once, with the weights of epoch" in (run_dir(run.id) / "log.txt").read_text()


def test_a_completed_run_stores_test_figures_with_intervals_calibration_and_predictions(completed_runs, tiny_dataset):
    from backend.data.cache import load_dataset_cache
    from backend.data.dataset import file_sha256
    from backend.evaluation.calibration import fit_temperature, nll
    from backend.evaluation.ood import feature_distance
    from backend.training.checkpoint import load_checkpoint
    from backend.training.data import to_model_input

    run = store.get_run(completed_runs["visual_cnn"])
    info = load_split(TrainConfig(**run.config))
    assert run.selection_split == "validation"
    assert run.split_counts["val"] == len(info.val) == len(info.classes)  # 15% of 6 per class: one each
    metrics = run.test_metrics
    for name in ("accuracy", "macro_f1"):
        low, high = metrics[f"{name}_ci"]
        assert 0.0 <= low <= metrics[name] <= high <= 1.0
    assert set(metrics["per_class_f1_ci"]) == set(info.classes) and metrics["n"] == len(info.test)
    assert 0.0 <= metrics["ece"] <= 1.0 and 0.0 <= metrics["ece_uncalibrated"] <= 1.0
    assert metrics["nll"] <= metrics["nll_uncalibrated"] + 0.05  # calibrated on val, scored on test
    assert metrics["epoch"] == run.best_epoch

    rows = store.predictions(run.id)
    assert len(rows) == len(info.test)
    by_path = {s.path.relative_to(info.root).as_posix(): s for s in info.test}
    for _, row in rows.iterrows():
        sample = by_path[row["path"]]
        assert row["item_hash"] == file_sha256(sample.path) and row["true_index"] == sample.label
        assert row["confidence"] == pytest.approx(max(row["probs"]), abs=1e-6)

    # Both checkpoints carry the temperature fitted on VALIDATION and the uncertainty statistics.
    model, checkpoint = load_checkpoint(run_dir(run.id) / "best.pt")
    assert read_keys(run_dir(run.id) / "last.pt") >= {"temperature", "uncertainty"}
    runtime = make_runtime("cpu", "fp32")
    with torch.inference_mode():
        seen = checkpoint["preprocessing"]  # the images as the run saw them
        val_out = model(to_model_input(load_dataset_cache(info.val, 32, preprocessing=seen), runtime))
        test_out = model(to_model_input(load_dataset_cache(info.test, 32, preprocessing=seen), runtime))
    val_logits, val_labels = val_out["logits"].numpy(), np.array([s.label for s in info.val])
    assert checkpoint["temperature"] == pytest.approx(fit_temperature(val_logits, val_labels), rel=1e-3)
    assert checkpoint["temperature"] == pytest.approx(run.temperature)
    assert nll(val_logits, val_labels, checkpoint["temperature"]) <= nll(val_logits, val_labels) + 1e-9
    uncertainty = checkpoint["uncertainty"]
    assert 0.0 <= uncertainty["confidence_threshold"] <= 1.0
    assert len(uncertainty["ood"]["class_means"]) == len(info.classes)
    distances = feature_distance(uncertainty["ood"], test_out["features"].numpy())
    assert distances.shape == (len(info.test),) and np.isfinite(distances).all()
    assert uncertainty["ood_threshold"] > 0 and metrics["ood_threshold"] == pytest.approx(uncertainty["ood_threshold"])


def read_keys(path) -> set[str]:
    return set(torch.load(path, map_location="cpu", weights_only=True))


def test_temperature_fitted_on_validation_lowers_the_nll_of_an_overconfident_model(completed_runs):
    """The run's own validation logits, made overconfident (x6): the fitted temperature cools them."""
    from backend.data.cache import load_dataset_cache
    from backend.evaluation.calibration import fit_temperature, nll
    from backend.training.checkpoint import load_checkpoint
    from backend.training.data import to_model_input

    run = store.get_run(completed_runs["visual_cnn"])
    info = load_split(TrainConfig(**run.config))
    model, checkpoint = load_checkpoint(run.checkpoint_path)
    images = load_dataset_cache(info.val, 32, preprocessing=checkpoint["preprocessing"])
    with torch.inference_mode():
        logits = 6.0 * model(to_model_input(images, make_runtime("cpu", "fp32")))["logits"]
    labels = np.array([s.label for s in info.val])
    temperature = fit_temperature(logits.numpy(), labels)
    assert temperature > 1.0
    assert nll(logits.numpy(), labels, temperature) < nll(logits.numpy(), labels)


def test_copies_across_splits_are_removed_before_training_and_counted(tmp_path):
    dataset = make_dataset(tmp_path / "ds", {"a": 6, "b": 6})
    (dataset / "val").mkdir()
    for name in ("a", "b"):
        (dataset / "val" / name).mkdir()
        for i in range(2):
            shutil.copy(dataset / "train" / name / f"{i}.png", dataset / "val" / name / f"v{i}.png")  # copies
        shutil.copy(dataset / "train" / name / "5.png", dataset / "val" / name / "own.png")
        (dataset / "val" / name / "own.png").write_bytes((dataset / "train" / name / "5.png").read_bytes() + b"x")
    shutil.copy(dataset / "val" / "a" / "own.png", dataset / "test" / "b" / "from_val.png")
    result = train_run(build_config(tiny(dataset, batch_size=4)))
    assert result.status == "completed", store.get_run(result.run_id).error
    run = store.get_run(result.run_id)
    assert run.split_counts == {"train": 12, "val": 2, "test": 4, "duplicates_removed": {"train": 0, "val": 4, "test": 1}}
    assert "copies of earlier splits removed" in (run_dir(run.id) / "log.txt").read_text()
