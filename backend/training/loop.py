"""The training loop, read top to bottom (after torchvision's ``references/classification/train.py``).

``train_one_epoch`` and ``evaluate`` each run one pass and return a dict of batch-size-weighted
means; ``fit`` only sequences data, model, loss, optimiser, schedule and the epoch loop, reporting
through a ``MetricsWriter`` and leaving the best checkpoint (by validation macro-F1), the last one
and the test predictions CSV where its ``OutputFiles`` say (``backend.runs.artifacts`` names them).

Three splits: every epoch is scored on the **validation** split, which alone picks the best epoch,
steps the plateau scheduler and stops early. The **test** split is read once, after the last epoch,
with the selected (best) weights; which split each evaluation read is recorded in the run's
``test_metrics["evaluations"]``. Then ``finish_run`` fits a temperature on validation logits, picks
the confidence threshold on validation, fits the feature-distance statistics on train features
(``backend/evaluation/ood.py``) and writes them into both checkpoints. Every model's loss is
``classification_weight * class_loss + sum(auxiliary_losses)``, each term logged on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from backend.data.dataset import SPLITS
from backend.device import Runtime, make_runtime
from backend.evaluation.calibration import (
    choose_confidence_threshold,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability_table,
    softmax,
)
from backend.evaluation.ood import distance_threshold, feature_distance, fit_feature_density
from backend.evaluation.stats import bootstrap_metrics
from backend.lineage import dataset_fingerprint
from backend.models import count_parameters, create_model, model_input_kind
from backend.training.checkpoint import build_checkpoint, save_checkpoint
from backend.training.config import TrainConfig, load_split
from backend.training.data import NORMALIZATION, TrainingData, build_training_data
from backend.training.distill import Teacher, distillation_targets
from backend.training.losses import build_loss
from backend.training.metrics import RunningMeans, classification_metrics, eval_report
from backend.training.optim import Schedule, build_optimizer, build_schedule
from backend.training.regularize import BatchMix, build_batch_mix, build_ema
from backend.training.writer import MetricsWriter, OutputFiles

StopCheck = Callable[[], bool]


class RunCancelled(Exception):
    """A stop was requested (SIGTERM); raised at the next batch boundary."""


def _never() -> bool:
    return False


def loss_terms(model: nn.Module, criterion: nn.Module, outputs: dict[str, Tensor], images: Tensor,
               targets: Tensor) -> dict[str, Tensor]:  # fmt: skip
    """The weighted loss components of one batch; their sum is the loss that is minimised."""
    return {"class": model.classification_weight * criterion(outputs["logits"], targets),
            **model.auxiliary_losses(outputs, images)}  # fmt: skip


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    runtime: Runtime,
    schedule: Schedule,
    scaler: torch.amp.GradScaler,
    ema: nn.Module | None = None,
    mix: BatchMix | None = None,
    grad_clip: float = 0.0,
    should_stop: StopCheck = _never,
) -> dict[str, Any]:
    """One pass over the training batches: {"loss", "acc", "components": {name: mean}}.

    A batch is ``(images, labels)`` or, when distilling, ``(images, labels, soft_targets)``: the loss
    reads the soft targets and the accuracy the labels.
    """
    model.train()
    means = RunningMeans()
    for images, labels, *soft in batches:
        if should_stop():
            raise RunCancelled("stop requested during training")
        targets = soft[0] if soft else labels
        hard = labels
        if mix is not None:
            images, targets = mix(images, labels)
            hard = targets.argmax(dim=1)  # a mixed image counts as its larger share
        with runtime.autocast():
            outputs = model(images)
            terms = loss_terms(model, criterion, outputs, images, targets)
        loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        schedule.on_batch()
        if ema is not None:
            ema.update_parameters(model)
        correct = (outputs["logits"].argmax(dim=1) == hard).float().mean()
        means.update({"loss": loss, "acc": correct, **terms}, n=len(labels))
    return _summarise(means)


def evaluate(
    model: nn.Module,
    criterion: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    runtime: Runtime,
    num_classes: int,
    should_stop: StopCheck = _never,
) -> dict[str, Any]:
    """Score the model on unaugmented batches: loss, acc, macro precision/recall/F1, components,
    the model's ``quality`` figures (``WorkbenchModel.quality_metrics``, e.g. the VAE's PSNR), the
    ``logits`` and softmax ``probabilities`` (N, k), the penultimate ``features`` (N, D) and the
    ``labels`` they belong to."""
    model.eval()
    means, quality = RunningMeans(), RunningMeans()
    logits, features, all_labels = [], [], []
    with torch.inference_mode():
        for images, labels in batches:
            if should_stop():
                raise RunCancelled("stop requested during evaluation")
            with runtime.autocast():
                outputs = model(images)
                terms = loss_terms(model, criterion, outputs, images, labels)
            means.update({"loss": sum(terms.values()), **terms}, n=len(labels))
            quality.update(model.quality_metrics(outputs, images), n=len(labels))
            logits.append(outputs["logits"].float())
            features.append(outputs["features"].float())
            all_labels.append(labels)
    logits_np = torch.cat(logits).cpu().numpy()
    probs = torch.cat(logits).softmax(dim=1).cpu().numpy()
    y_true = torch.cat(all_labels).cpu().numpy()
    scores = classification_metrics(y_true, probs.argmax(axis=1), num_classes)
    return {**_summarise(means), **scores, "quality": quality.means(), "logits": logits_np, "probabilities": probs,
            "features": torch.cat(features).cpu().numpy(), "labels": y_true}  # fmt: skip


def penultimate_features(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], *, runtime: Runtime,
                         should_stop: StopCheck = _never) -> np.ndarray:  # fmt: skip
    """The model's ``features`` output for every image of ``batches``, (N, D) float32 on the CPU."""
    model.eval()
    features = []
    with torch.inference_mode():
        for images, _ in batches:
            if should_stop():
                raise RunCancelled("stop requested during the feature pass")
            with runtime.autocast():
                features.append(model(images)["features"].float())
    return torch.cat(features).cpu().numpy()


def on_runtime(model: nn.Module, runtime: Runtime) -> nn.Module:
    """The model on the runtime's device, channels_last when the runtime uses it."""
    return model.to(runtime.device, memory_format=torch.channels_last if runtime.channels_last else torch.preserve_format)


def _summarise(means: RunningMeans) -> dict[str, Any]:
    """Split the running means into the headline values and the loss components."""
    values = means.means()
    headline = {key: values.pop(key) for key in ("loss", "acc") if key in values}
    return {**headline, "components": values}


def fit(
    config: TrainConfig,
    writer: MetricsWriter,
    *,
    files: OutputFiles,
    run_id: int | None = None,
    should_stop: StopCheck = _never,
    log: logging.Logger | None = None,
    teacher: Teacher | None = None,
) -> None:
    """Train ``config`` to the end (or an early stop), reporting every epoch and the final test report.

    ``teacher`` is the run ``config.distill_from`` names (``backend.runs.teacher.check_teacher``),
    asked once for its probabilities on the training items (``backend.training.distill``).

    ``should_stop`` is polled every batch; when it turns true ``RunCancelled`` is raised, leaving
    the checkpoints of finished epochs in place. The caller records cancellation and failure.
    """
    log = log or logging.getLogger(__name__)
    Path(files.folder).mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    runtime = make_runtime(config.device, config.precision)
    if runtime.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: pick the fastest kernels once

    split = load_split(config, drop_duplicates=True)
    log.info("dataset %s: %d classes, %d train / %d val (%s) / %d test images (%s split)", split.root,
             len(split.classes), len(split.train), len(split.val), split.val_source, len(split.test),
             split.split)  # fmt: skip
    for note in split.notes:
        log.info("note: %s", note)
    if any(split.duplicates_removed.values()):
        log.warning("warning: copies of earlier splits removed: %s", split.duplicates_removed)
    train_labels = np.array([s.label for s in split.train], dtype=np.int64)
    targets, distillation = distillation_targets(config, teacher, split, list(split.classes), train_labels, log)
    data = build_data(config, split, runtime, train_targets=targets)
    class_names = data.class_names
    train_counts = np.bincount(data.train_labels, minlength=len(class_names))
    log.info("data: %s", data.path)

    model = on_runtime(create_model(config.model, num_classes=len(class_names), image_size=config.image_size,
                                    **config.model_kwargs), runtime)  # fmt: skip
    criterion = build_loss(
        config.loss, class_counts=train_counts.tolist(), class_weighting=config.class_weighting, beta=config.beta,
        gamma=config.gamma, tau=config.tau, label_smoothing=config.label_smoothing,
    ).to(runtime.device)  # fmt: skip
    optimizer = build_optimizer(model, config)
    schedule = build_schedule(optimizer, config, data.steps_per_epoch)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.uses_grad_scaler)
    ema = build_ema(model, config.ema_decay)
    mix = build_batch_mix(config.mixup_alpha, config.cutmix_alpha, len(class_names))
    eval_model = ema.module if ema is not None else model

    num_params = count_parameters(model)
    log.info("model %s: %s parameters on %s", config.model, f"{num_params:,}", runtime.describe())
    writer.run_started(class_names=class_names, class_counts=_class_counts(split), device=runtime.describe(),
                       num_params=num_params, total_epochs=config.epochs,
                       dataset_fingerprint=dataset_fingerprint(split.root))  # fmt: skip

    def checkpoint(epoch: int, metrics: Mapping[str, float]) -> dict:
        return {**build_checkpoint(eval_model, class_names=class_names, image_size=config.image_size,
                                   normalization=NORMALIZATION, epoch=epoch, metrics=metrics,
                                   config=config.to_dict(), run_id=run_id, preprocessing=config.preprocessing()),
                **getattr(data, "checkpoint_fields", {})}  # a series model's input_kind and series_length

    evaluations: list[dict[str, Any]] = []  # which split each evaluation read, in order

    def score(split_name: str, epoch: int) -> dict[str, Any]:
        evaluations.append({"split": split_name, "epoch": epoch})
        return evaluate(eval_model, criterion, data.eval_batches(split_name), runtime=runtime,
                        num_classes=len(class_names), should_stop=should_stop)  # fmt: skip

    best: dict[str, Any] = {"f1": -1.0}
    for epoch in range(1, config.epochs + 1):
        started, lr = time.perf_counter(), schedule.lr
        model.start_epoch(epoch, config.epochs)
        train = train_one_epoch(model, criterion, optimizer, data.train_batches(), runtime=runtime,
                                schedule=schedule, scaler=scaler, ema=ema, mix=mix, grad_clip=config.grad_clip,
                                should_stop=should_stop)  # fmt: skip
        val = score("val", epoch)
        schedule.on_epoch(val)
        row = epoch_row(epoch, train, val, lr=lr, seconds=time.perf_counter() - started)
        improved = val["f1"] > best["f1"]
        state = checkpoint(epoch, _checkpoint_metrics(row))
        save_checkpoint(files.last, state)  # files first: a row the dashboard sees has them
        if improved:
            save_checkpoint(files.best, state)
        writer.log_epoch(row)
        log.info(format_epoch(row, config.epochs, improved))
        if improved:
            best = {"epoch": epoch, "f1": val["f1"], "val": val, "train_acc": train["acc"], "state": state}
            writer.log_best(epoch=epoch, metrics=_val_metrics(val), train_acc=train["acc"],
                            checkpoint_path=files.best)  # fmt: skip
        if config.early_stopping_patience and epoch - best["epoch"] >= config.early_stopping_patience:
            log.info("early stop: no better val macro-F1 for %d epochs (best %.4f at epoch %d)",
                     config.early_stopping_patience, best["f1"], best["epoch"])  # fmt: skip
            break

    # The test split, once, with the selected weights.
    eval_model.load_state_dict(best["state"]["state_dict"])
    log.info("evaluating the test split once, with the weights of epoch %d (selected on validation)", best["epoch"])
    test = score("test", epoch)
    report = eval_report(test["labels"], test["probabilities"].argmax(axis=1), class_names)
    finish_run(config, data, split, eval_model, writer, best=best, last=state, test=test,
               evaluations=evaluations, files=files, runtime=runtime, should_stop=should_stop, log=log,
               distillation=distillation)  # fmt: skip
    writer.run_finished("completed", report=report, checkpoint_path=files.best)
    log.info("completed: best epoch %d, test acc %.2f%%, macro-F1 %.4f, train-test gap %.1f points",
             best["epoch"], 100 * report.metrics["acc"], report.metrics["f1"],
             100 * (best["train_acc"] - report.metrics["acc"]))  # fmt: skip


def build_data(config: TrainConfig, split, runtime: Runtime, *, train_targets: np.ndarray | None = None):
    """The batches of the model's input kind: decoded images (``TrainingData``) or, for a series
    model, each plot's CSV series (``backend.training.series_data``); with ``train_targets`` (N, C)
    each training batch carries its rows as a third element (distillation)."""
    if model_input_kind(config.model) == "series":
        from backend.training.series_data import build_series_training_data

        return build_series_training_data(config, split, runtime, train_targets=train_targets)
    return build_training_data(config, split, runtime, train_targets=train_targets)


def finish_run(config: TrainConfig, data: TrainingData, split, model: nn.Module, writer: MetricsWriter, *,
               best: dict[str, Any], last: dict, test: dict[str, Any], evaluations: list[dict[str, Any]],
               files: OutputFiles, runtime: Runtime, should_stop: StopCheck, log: logging.Logger,
               distillation: Mapping[str, Any] | None = None) -> None:  # fmt: skip
    """After the test pass: calibration and feature statistics from validation and train, the
    test figures with intervals, per-item predictions, and both checkpoints rewritten with them.

    Validation's logits and features are the best epoch's own (same weights); only train needs
    one more forward pass, for its features.
    """
    val, class_names = best["val"], data.class_names
    temperature = fit_temperature(val["logits"], val["labels"])
    val_probs = softmax(val["logits"], temperature)
    confidence_threshold = choose_confidence_threshold(val_probs.max(axis=1), val_probs.argmax(axis=1) == val["labels"])
    train_features = penultimate_features(model, data.eval_batches("train"), runtime=runtime, should_stop=should_stop)
    density = fit_feature_density(train_features, data.train_labels)
    ood_threshold = distance_threshold(feature_distance(density, val["features"]))
    uncertainty = {"confidence_threshold": confidence_threshold, "ood": density, "ood_threshold": ood_threshold}

    y_test, test_probs = test["labels"], softmax(test["logits"], temperature)
    predicted = test_probs.argmax(axis=1)
    test_distance = feature_distance(density, test["features"])
    test_metrics = {
        **bootstrap_metrics(y_test, predicted, class_names, seed=config.seed),
        "ece": expected_calibration_error(test_probs, y_test),
        "ece_uncalibrated": expected_calibration_error(test["probabilities"], y_test),
        "nll": nll(test["logits"], y_test, temperature),
        "nll_uncalibrated": nll(test["logits"], y_test),
        "reliability": reliability_table(test_probs, y_test).to_dict(orient="records"),
        "epoch": best["epoch"],
        "evaluations": list(evaluations),
        "confidence_threshold": confidence_threshold,
        "ood_threshold": ood_threshold,
        "ood_flagged": float(np.mean(test_distance > ood_threshold)),
        **test["quality"],  # the model's own figures on test, e.g. the VAE's recon_psnr
        **({"distillation": dict(distillation)} if distillation else {}),  # the teacher and its agreement
    }
    for state in (best["state"], last):
        state.update(temperature=temperature, uncertainty=uncertainty)
    save_checkpoint(files.best, best["state"])
    save_checkpoint(files.last, last)

    rows = prediction_rows(split, y_test, test_probs)
    write_predictions(files.predictions, rows, class_names, split.root)
    writer.log_test(selection_split="validation", split_counts=split_counts(split), test_metrics=test_metrics,
                    temperature=temperature, predictions=rows)  # fmt: skip
    log.info("test: acc %.4f %s, macro-F1 %.4f %s (95%% bootstrap); temperature %.3f (fitted on validation): "
             "ECE %.4f -> %.4f; confidence threshold %.3f; feature distance flags %.1f%% of test",
             test_metrics["accuracy"], test_metrics["accuracy_ci"], test_metrics["macro_f1"],
             test_metrics["macro_f1_ci"], temperature, test_metrics["ece_uncalibrated"], test_metrics["ece"],
             confidence_threshold, 100 * test_metrics["ood_flagged"])  # fmt: skip


def epoch_row(epoch: int, train: dict, val: dict, *, lr: float, seconds: float) -> dict[str, Any]:
    """One epoch as a run-store row; loss components go to ``extra`` as ``train_<name>``/``val_<name>``,
    the model's validation quality figures as ``quality_val_<name>`` (not a loss component)."""
    extra = {f"{split}_{name}": value for split, stats in (("train", train), ("val", val))
             for name, value in stats["components"].items()}  # fmt: skip
    extra.update({f"quality_val_{name}": value for name, value in val.get("quality", {}).items()})
    return {
        "epoch": epoch, "train_loss": train["loss"], "train_acc": train["acc"], "val_loss": val["loss"],
        "val_acc": val["acc"], "val_precision": val["precision"], "val_recall": val["recall"], "val_f1": val["f1"],
        "lr": lr, "seconds": seconds, "extra": extra,
    }  # fmt: skip


def format_epoch(row: Mapping[str, Any], epochs: int, improved: bool) -> str:
    """The log line of one epoch (what a user tails in log.txt)."""
    components = " ".join(f"{k}={v:.4g}" for k, v in row["extra"].items())
    return (
        f"epoch {row['epoch']}/{epochs} | train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}% | "
        f"val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:.2f}% P {row['val_precision']:.4f} "
        f"R {row['val_recall']:.4f} F1 {row['val_f1']:.4f} | lr {row['lr']:.2e} | {row['seconds']:.1f}s | "
        f"{components}{' | new best' if improved else ''}"
    )


def _val_metrics(val: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(val[key]) for key in ("acc", "precision", "recall", "f1", "loss")}


def _checkpoint_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The scalar metrics of an epoch row (what a checkpoint carries)."""
    return {key: float(value) for key, value in row.items() if key not in {"epoch", "extra"}}


def _class_counts(split) -> dict[str, dict[str, int]]:
    return {name: split.counts(name) for name in SPLITS}


def split_counts(split) -> dict[str, Any]:
    """Images per split after removing cross-split copies, and how many copies each split lost."""
    return {**{name: len(getattr(split, name)) for name in SPLITS},
            "duplicates_removed": dict(split.duplicates_removed)}  # fmt: skip


def prediction_rows(split, labels: np.ndarray, probabilities: np.ndarray) -> list[dict[str, Any]]:
    """One row per test item: item_hash (sha256 of its bytes), path (relative to the dataset root),
    true_index, pred_index, probs and confidence (calibrated): what ``store.save_predictions`` takes."""
    return [
        {"item_hash": split.hashes[sample.path], "path": sample.path.relative_to(split.root).as_posix(),
         "true_index": int(label), "pred_index": int(probs.argmax()),
         "probs": probs.tolist(), "confidence": float(probs.max())}
        for sample, label, probs in zip(split.test, labels, probabilities, strict=True)
    ]  # fmt: skip


def write_predictions(path: Path, rows: list[dict[str, Any]], class_names: list[str], root: Path) -> Path:
    """test_predictions.csv: file (absolute), path (relative to ``root``, the dataset), item_hash, true,
    predicted, confidence, prob_<class> for every class."""
    probabilities = np.array([row["probs"] for row in rows]).reshape(len(rows), len(class_names))
    frame = pd.DataFrame({
        "file": [str(root / row["path"]) for row in rows],
        "path": [row["path"] for row in rows],
        "item_hash": [row["item_hash"] for row in rows],
        "true": [class_names[row["true_index"]] for row in rows],
        "predicted": [class_names[row["pred_index"]] for row in rows],
        "confidence": [row["confidence"] for row in rows],
        **{f"prob_{name}": probabilities[:, i] for i, name in enumerate(class_names)},
    })  # fmt: skip
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False, float_format="%.6f")
    tmp.replace(path)
    return path
