"""Optimiser and learning-rate schedule registries, keyed by the names TrainConfig accepts.

Schedules differ in when they step (OneCycle and cosine every batch, plateau once per epoch on the
validation macro-F1), so each factory returns a ``Schedule`` with both hooks and the loop calls
both without knowing which one acts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, OneCycleLR, ReduceLROnPlateau, SequentialLR

from backend.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULERS: Registry = Registry("scheduler")


@OPTIMIZERS.register()
def adam(params: Iterable, config) -> torch.optim.Optimizer:
    """Adam with coupled L2 (the seeds' default)."""
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


@OPTIMIZERS.register()
def adamw(params: Iterable, config) -> torch.optim.Optimizer:
    """AdamW: decoupled weight decay, the better partner for OneCycle and label smoothing."""
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


@OPTIMIZERS.register()
def sgd(params: Iterable, config) -> torch.optim.Optimizer:
    """SGD with (optionally Nesterov) momentum."""
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
    )


def build_optimizer(model: torch.nn.Module, config) -> torch.optim.Optimizer:
    """The optimiser ``config.optimizer`` names, over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return OPTIMIZERS.get(config.optimizer)(params, config)


@dataclass
class Schedule:
    """A learning-rate schedule with one hook per batch and one per epoch (either may do nothing)."""

    optimizer: torch.optim.Optimizer
    on_batch: Callable[[], None] = field(default=lambda: None)
    on_epoch: Callable[[dict], None] = field(default=lambda metrics: None)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


@SCHEDULERS.register()
def none(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int) -> Schedule:
    """A constant rate."""
    return Schedule(optimizer)


@SCHEDULERS.register()
def plateau(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int) -> Schedule:
    """ReduceLROnPlateau on validation macro-F1, the metric the best checkpoint is chosen by."""
    scheduler = ReduceLROnPlateau(optimizer, mode="max", factor=config.plateau_factor, patience=config.plateau_patience)
    return Schedule(optimizer, on_epoch=lambda metrics: scheduler.step(metrics["f1"]))


@SCHEDULERS.register()
def onecycle(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int) -> Schedule:
    """OneCycle to ``lr`` and back down, stepped every batch."""
    scheduler = OneCycleLR(optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch)
    return Schedule(optimizer, on_batch=scheduler.step)


@SCHEDULERS.register()
def cosine(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int) -> Schedule:
    """Linear warm-up for ``warmup_epochs`` then cosine decay to zero, stepped every batch."""
    warmup = config.warmup_epochs * steps_per_epoch
    decay = CosineAnnealingLR(optimizer, T_max=max(1, config.epochs * steps_per_epoch - warmup))
    if warmup == 0:
        return Schedule(optimizer, on_batch=decay.step)
    ramp = LinearLR(optimizer, start_factor=0.01, total_iters=warmup)
    scheduler = SequentialLR(optimizer, schedulers=[ramp, decay], milestones=[warmup])
    return Schedule(optimizer, on_batch=scheduler.step)


def build_schedule(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int) -> Schedule:
    """The schedule ``config.scheduler`` names for ``steps_per_epoch`` optimiser steps an epoch."""
    return SCHEDULERS.get(config.scheduler)(optimizer, config, steps_per_epoch)
