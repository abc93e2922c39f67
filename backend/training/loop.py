"""The training loop, read top to bottom (after torchvision's ``references/classification/train.py``).

``train_one_epoch`` and ``evaluate`` each run one pass and return a dict of batch-size-weighted
means; ``fit`` only sequences data, model, loss, optimiser, schedule and the epoch loop, reporting
through a ``MetricsWriter`` and leaving ``best.pt`` (by validation macro-F1), ``last.pt`` and
``test_predictions.csv`` in ``out_dir``.

The dataset's test split is the validation split, as in the team's seeds: every epoch is scored on
it, the best epoch is chosen by its macro-F1, and the end-of-run per-class report is that best
epoch's evaluation (the best model on the test split). Every model's loss is
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

from backend.device import Runtime, make_runtime
from backend.models import count_parameters, create_model
from backend.training.checkpoint import build_checkpoint, save_checkpoint
from backend.training.config import TrainConfig, load_split
from backend.training.data import NORMALIZATION, build_training_data
from backend.training.losses import build_loss
from backend.training.metrics import RunningMeans, classification_metrics, eval_report
from backend.training.optim import Schedule, build_optimizer, build_schedule
from backend.training.regularize import BatchMix, build_batch_mix, build_ema
from backend.training.writer import MetricsWriter

BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
PREDICTIONS_FILE = "test_predictions.csv"

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
    """One pass over the training batches: {"loss", "acc", "components": {name: mean}}."""
    model.train()
    means = RunningMeans()
    for images, labels in batches:
        if should_stop():
            raise RunCancelled("stop requested during training")
        targets = labels
        if mix is not None:
            images, targets = mix(images, labels)
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
        hard = targets.argmax(dim=1) if targets.dim() == 2 else targets  # a mixed image counts as its larger share
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
    and the softmax ``probabilities`` (N, k) with the ``labels`` they belong to."""
    model.eval()
    means = RunningMeans()
    probabilities, all_labels = [], []
    with torch.inference_mode():
        for images, labels in batches:
            if should_stop():
                raise RunCancelled("stop requested during evaluation")
            with runtime.autocast():
                outputs = model(images)
                terms = loss_terms(model, criterion, outputs, images, labels)
            means.update({"loss": sum(terms.values()), **terms}, n=len(labels))
            probabilities.append(outputs["logits"].float().softmax(dim=1))
            all_labels.append(labels)
    probs = torch.cat(probabilities).cpu().numpy()
    y_true = torch.cat(all_labels).cpu().numpy()
    scores = classification_metrics(y_true, probs.argmax(axis=1), num_classes)
    return {**_summarise(means), **scores, "probabilities": probs, "labels": y_true}


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
    out_dir: Path,
    run_id: int | None = None,
    should_stop: StopCheck = _never,
    log: logging.Logger | None = None,
) -> None:
    """Train ``config`` to the end (or an early stop), reporting every epoch and the final test report.

    ``should_stop`` is polled every batch; when it turns true ``RunCancelled`` is raised, leaving
    the checkpoints of finished epochs in place. The caller records cancellation and failure.
    """
    log = log or logging.getLogger(__name__)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    runtime = make_runtime(config.device, config.precision)
    if runtime.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: pick the fastest kernels once

    split = load_split(config)
    log.info("dataset %s: %d classes, %d train / %d test images (%s split)", split.root, len(split.classes),
             len(split.train), len(split.test), split.split)  # fmt: skip
    for note in split.notes:
        log.info("note: %s", note)
    data = build_training_data(config, split, runtime)
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
                       num_params=num_params, total_epochs=config.epochs)  # fmt: skip

    def checkpoint(epoch: int, metrics: Mapping[str, float]) -> dict:
        return build_checkpoint(eval_model, class_names=class_names, image_size=config.image_size,
                                normalization=NORMALIZATION, epoch=epoch, metrics=metrics,
                                config=config.to_dict(), run_id=run_id)  # fmt: skip

    best: dict[str, Any] = {"f1": -1.0}
    for epoch in range(1, config.epochs + 1):
        started, lr = time.perf_counter(), schedule.lr
        train = train_one_epoch(model, criterion, optimizer, data.train_batches(), runtime=runtime,
                                schedule=schedule, scaler=scaler, ema=ema, mix=mix, grad_clip=config.grad_clip,
                                should_stop=should_stop)  # fmt: skip
        val = evaluate(eval_model, criterion, data.test_batches(), runtime=runtime, num_classes=len(class_names),
                       should_stop=should_stop)  # fmt: skip
        schedule.on_epoch(val)
        row = epoch_row(epoch, train, val, lr=lr, seconds=time.perf_counter() - started)
        improved = val["f1"] > best["f1"]
        state = checkpoint(epoch, _checkpoint_metrics(row))
        save_checkpoint(out_dir / LAST_CHECKPOINT, state)  # files first: a row the dashboard sees has them
        if improved:
            save_checkpoint(out_dir / BEST_CHECKPOINT, state)
        writer.log_epoch(row)
        log.info(format_epoch(row, config.epochs, improved))
        if improved:
            best = {"epoch": epoch, "f1": val["f1"], "val": val, "train_acc": train["acc"]}
            writer.log_best(epoch=epoch, metrics=_val_metrics(val), train_acc=train["acc"],
                            checkpoint_path=out_dir / BEST_CHECKPOINT)  # fmt: skip
        if config.early_stopping_patience and epoch - best["epoch"] >= config.early_stopping_patience:
            log.info("early stop: no better val macro-F1 for %d epochs (best %.4f at epoch %d)",
                     config.early_stopping_patience, best["f1"], best["epoch"])  # fmt: skip
            break

    report = eval_report(best["val"]["labels"], best["val"]["probabilities"].argmax(axis=1), class_names)
    write_predictions(out_dir / PREDICTIONS_FILE, data.test_files, best["val"]["labels"],
                      best["val"]["probabilities"], class_names)  # fmt: skip
    writer.run_finished("completed", report=report, checkpoint_path=out_dir / BEST_CHECKPOINT)
    log.info("completed: best epoch %d, test acc %.2f%%, macro-F1 %.4f, train-test gap %.1f points",
             best["epoch"], 100 * report.metrics["acc"], report.metrics["f1"],
             100 * (best["train_acc"] - report.metrics["acc"]))  # fmt: skip


def epoch_row(epoch: int, train: dict, val: dict, *, lr: float, seconds: float) -> dict[str, Any]:
    """One epoch as a run-store row; loss components go to ``extra`` as ``train_<name>``/``val_<name>``."""
    extra = {f"{split}_{name}": value for split, stats in (("train", train), ("val", val))
             for name, value in stats["components"].items()}  # fmt: skip
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
    return {"train": split.counts("train"), "test": split.counts("test")}


def write_predictions(path: Path, files: list[str], labels: np.ndarray, probabilities: np.ndarray,
                      class_names: list[str]) -> Path:  # fmt: skip
    """test_predictions.csv: file, true, predicted, confidence, prob_<class> for every class."""
    predicted = probabilities.argmax(axis=1)
    frame = pd.DataFrame({
        "file": files,
        "true": [class_names[i] for i in labels],
        "predicted": [class_names[i] for i in predicted],
        "confidence": probabilities.max(axis=1),
        **{f"prob_{name}": probabilities[:, i] for i, name in enumerate(class_names)},
    })  # fmt: skip
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False, float_format="%.6f")
    tmp.replace(path)
    return path
