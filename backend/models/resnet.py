"""ResNet50 with the classifier head of the team's seed model (``000_6ece13bbb17eaa0d.txt``).

ImageNet weights come only from what is already on this machine: torchvision's file in the local
torch hub cache, or a state dict the user names (``--weights FILE``). Nothing is downloaded, and a
run that asked for pretrained weights never silently trains from scratch instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision import models as tvm

from backend.errors import WorkbenchError
from backend.models import WorkbenchModel, register_model

FEATURES = 2048
# Preferred first: V2 is the better ImageNet recipe; V1 is taken when it is the file the cache holds.
IMAGENET_WEIGHTS = (tvm.ResNet50_Weights.IMAGENET1K_V2, tvm.ResNet50_Weights.IMAGENET1K_V1)


class PretrainedWeightsError(WorkbenchError, ValueError):
    """Pretrained weights were asked for but can't be had on this machine."""


class ResNet50Classifier(WorkbenchModel):
    """torchvision ResNet50 backbone (2048 features) -> the seed's three-layer head."""

    cam_layers = ("backbone.layer4", "backbone.layer3", "backbone.layer2")  # Grad-CAM (docs/EXPLAIN.md)

    def __init__(self, num_classes: int, dropout: Sequence[float]):
        super().__init__()
        self.backbone = tvm.resnet50(weights=None)
        self.backbone.fc = nn.Identity()
        self.head = seed_head(num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = self.head[:-1](self.backbone(x))  # the head's last hidden layer (256)
        return {"logits": self.head[-1](features), "features": features}


def seed_head(num_classes: int, dropout: Sequence[float]) -> nn.Sequential:
    """2048 -> Dropout -> 512 + ReLU + BN -> Dropout -> 256 + ReLU + BN -> Dropout -> classes."""
    first, second, last = dropout
    return nn.Sequential(
        nn.Dropout(first),
        nn.Linear(FEATURES, 512),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(512),
        nn.Dropout(second),
        nn.Linear(512, 256),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(256),
        nn.Dropout(last),
        nn.Linear(256, num_classes),
    )


@register_model(
    defaults={
        "image_size": 224,
        "batch_size": 32,
        "lr": 1e-3,
        "optimizer": "adam",
        "scheduler": "plateau",
        "plateau_factor": 0.5,
        "plateau_patience": 3,
        "epochs": 30,
    }
)
def resnet50(
    num_classes: int,
    image_size: int,
    pretrained: bool = False,
    weights_file: str | Path | None = None,
    dropout: Sequence[float] = (0.3, 0.3, 0.2),
) -> ResNet50Classifier:
    """ResNet50 + seed head; 24,692,297 parameters for nine classes.

    ``weights_file`` (a local state dict) wins over ``pretrained`` (torchvision's ImageNet file from
    the local torch cache); either loads the backbone only, the head always starts fresh. Any image
    size works (global average pooling); ``image_size`` is part of the common builder signature.
    """
    dropout = _check_dropout(dropout)
    model = ResNet50Classifier(num_classes, dropout)
    if weights_file is not None:
        load_backbone_weights(model.backbone, Path(weights_file))
    elif pretrained:
        load_backbone_weights(model.backbone, cached_imagenet_weights())
    return model


def _check_dropout(dropout: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(p) for p in dropout)
    if len(values) != 3 or not all(0.0 <= p < 1.0 for p in values):
        raise ValueError(
            f"dropout must be three probabilities in [0, 1) for the head's three layers, got {list(dropout)}"
        )
    return values


def hub_weights_path(weights: tvm.WeightsEnum) -> Path:
    """Where torchvision keeps ``weights`` once downloaded: ``<torch hub dir>/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def cached_imagenet_weights() -> Path:
    """The ImageNet ResNet50 file in the local torch cache, or a plain error saying how to add one."""
    paths = [hub_weights_path(w) for w in IMAGENET_WEIGHTS]
    for path in paths:
        if path.is_file():
            return path
    raise PretrainedWeightsError(
        f"ImageNet weights for ResNet50 are not in the local torch cache: looked for {paths[0]} "
        f"(or {paths[1].name} beside it), and this product never downloads them. Copy the file "
        f"({IMAGENET_WEIGHTS[0].url}) to that folder, or pass a local state dict with --weights FILE, "
        "or train without --pretrained."
    )


def load_backbone_weights(backbone: nn.Module, path: Path) -> None:
    """Load a ResNet50 state dict from ``path`` into ``backbone``, ignoring any classifier head.

    Accepts torchvision's files (keys ``conv1.weight``...), and this product's checkpoints or state
    dicts (keys ``backbone.*``, possibly under ``"state_dict"``), so a run can start from another.
    """
    if not path.is_file():
        raise PretrainedWeightsError(
            f"weights file {path} does not exist; give the path of a ResNet50 state dict with --weights FILE"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PretrainedWeightsError(f"could not read weights file {path} as a PyTorch state dict: {e}") from e
    state = _backbone_state(state)
    expected = [k for k in backbone.state_dict() if not k.endswith("num_batches_tracked")]
    missing = [k for k in expected if k not in state]
    if missing:
        raise PretrainedWeightsError(
            f"weights file {path} is not a ResNet50 state dict: {len(missing)} of {len(expected)} backbone "
            f"tensors are missing (first: {', '.join(missing[:3])})"
        )
    try:
        backbone.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise PretrainedWeightsError(f"weights file {path} does not fit ResNet50: {e}") from e


def _backbone_state(state) -> dict[str, Tensor]:
    """Backbone tensors of a state dict under torchvision names; head (``fc.*``/``head.*``) dropped."""
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        return {}
    renamed = {key.removeprefix("backbone."): value for key, value in state.items()}
    return {key: value for key, value in renamed.items() if not key.startswith(("fc.", "head."))}
