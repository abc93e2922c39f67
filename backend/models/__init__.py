"""The model registry: one name -> one builder, so callers never branch on a model name.

Every model built here honours one contract (``docs/ARCHITECTURE.md``):

- ``forward(x)`` returns a dict with ``"logits"`` (N, num_classes); the VAE adds ``"recon"``,
  ``"mu"`` and ``"logvar"``.
- ``auxiliary_losses(outputs, images)`` returns the *weighted* extra loss terms (empty for plain
  classifiers), and ``classification_weight`` scales the classification loss, so the training loop
  computes ``classification_weight * cls_loss + sum(auxiliary_losses)`` for any model.
- ``model_name`` and ``model_kwargs`` (JSON-able architecture kwargs) let a checkpoint rebuild the
  model with ``create_model(model_name, num_classes=..., image_size=..., **model_kwargs)``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import warnings
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from backend.registry import Registry

MODELS = Registry("model")
MIN_IMAGE_SIZE = 16

# Options that only choose the starting weights. A checkpoint's state dict replaces those weights,
# so these are left out of ``model_kwargs``: rebuilding a trained model never looks for them again.
INIT_ONLY_KWARGS = frozenset({"pretrained", "weights_file"})

_DEFAULTS: dict[str, dict] = {}
_INPUT_KINDS: dict[str, str] = {}  # model name -> "image" (a plot image) or "series" (a CSV's values)
_SQUARE_ONLY: dict[str, bool] = {}  # model name -> whether it needs a square input (aspect 1)
INPUT_KINDS = ("image", "series")


class WorkbenchModel(nn.Module):
    """Shared defaults of the model contract; a plain classifier only writes ``forward``."""

    classification_weight: float = 1.0
    model_name: str  # set by the registered builder, with model_kwargs
    model_kwargs: dict

    def auxiliary_losses(self, outputs: dict[str, Tensor], images: Tensor) -> dict[str, Tensor]:
        """Weighted extra loss terms beside the classification loss: none for a plain classifier."""
        return {}

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the training loop before epoch ``epoch`` (1-based) of ``epochs``: a schedule of
        the model's own (the VAE's KL warm-up) reads it; a plain classifier has none."""

    def quality_metrics(self, outputs: dict[str, Tensor], images: Tensor) -> dict[str, Tensor]:
        """Per-batch figures of the model's other output, averaged over an evaluation and reported
        beside the loss (the VAE's reconstruction PSNR); none for a plain classifier."""
        return {}


def register_model(
    fn: Callable | None = None, *, defaults: dict | None = None, input_kind: str = "image", square_only: bool = False
):
    """Register a model builder under its function name; usable as ``@register_model`` or
    ``@register_model(defaults={...})``.

    ``input_kind`` is what the model reads: ``"image"`` (a plot, (N, 3, S, S)) or ``"series"`` (a
    CSV's values, see ``backend/models/series1d.py``); training and prediction pick their data path by it.
    ``square_only`` marks an image model that needs a square input (the VAE's decoder draws
    squares): the config refuses another ``aspect`` for it and the Train page does not offer one.

    ``defaults`` are the recommended TrainConfig overrides for the model (``model_defaults``).
    The registered builder validates ``num_classes`` / ``image_size`` / option names and stamps
    ``model_name`` and ``model_kwargs`` on the model, whether it is called directly or through
    ``create_model``.
    """
    if fn is None:
        return functools.partial(register_model, defaults=defaults, input_kind=input_kind, square_only=square_only)
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, got {input_kind!r}")
    name = fn.__name__
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def build(num_classes: int, image_size: int, **kwargs) -> WorkbenchModel:
        _check_size_args(num_classes, image_size)
        bound = _bind_options(name, signature, num_classes, image_size, kwargs)
        model = fn(*bound.args, **bound.kwargs)
        model.model_name = name
        model.model_kwargs = {
            key: _jsonable(value)
            for key, value in bound.arguments.items()
            if key not in {"num_classes", "image_size"} | INIT_ONLY_KWARGS
        }
        return model

    _DEFAULTS[name] = dict(defaults or {})
    _INPUT_KINDS[name] = input_kind
    _SQUARE_ONLY[name] = bool(square_only)
    return MODELS.register(name)(build)


def _check_size_args(num_classes: int, image_size: int) -> None:
    """Fail early, with what to change, on a class count or image size no model can use."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"num_classes must be a whole number of at least 2, got {num_classes!r}: a classifier needs two classes"
        )
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"image_size must be a whole number of pixels of at least {MIN_IMAGE_SIZE}, got {image_size!r}"
        )


def _bind_options(name: str, signature: inspect.Signature, num_classes: int, image_size: int, kwargs: dict):
    """Bind the builder's arguments, defaults included, turning a misspelt option into a clear error."""
    options = [p for p in signature.parameters if p not in {"num_classes", "image_size"}]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ValueError(f"model {name!r} has no option {', '.join(unknown)}; its options are: {', '.join(options)}")
    bound = signature.bind(num_classes=num_classes, image_size=image_size, **kwargs)
    bound.apply_defaults()
    return bound


def _jsonable(value):
    """Tuples become lists so ``model_kwargs`` survives JSON and ``torch.load(weights_only=True)``."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def list_models() -> list[str]:
    """Registered model names, sorted (feeds the CLI choices and the Train page)."""
    return MODELS.names()


def create_model(name: str, *, num_classes: int, image_size: int, **kwargs) -> WorkbenchModel:
    """Build model ``name``; unknown names and options fail with the valid ones listed."""
    return MODELS.get(name)(num_classes=num_classes, image_size=image_size, **kwargs)


def check_model_kwargs(name: str, model_kwargs: Mapping) -> None:
    """Validate ``model_kwargs`` for model ``name`` before a run starts; ValueError says what to change.

    Builds the model on the meta device: every check the real build makes runs (option names and
    values, a weights file's keys), but no weights are allocated: milliseconds, plus reading a weights file.
    """
    with torch.device("meta"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-meta parameter.*")  # loading into meta is a no-op
        create_model(name, num_classes=2, image_size=MIN_IMAGE_SIZE, **model_kwargs)


def model_defaults(name: str) -> dict:
    """Recommended TrainConfig overrides for ``name`` (the seeds' hyperparameters); a fresh copy."""
    MODELS.get(name)
    return copy.deepcopy(_DEFAULTS[name])


def model_input_kind(name: str) -> str:
    """What model ``name`` reads: ``"image"`` or ``"series"`` (unknown names fail with the valid ones)."""
    MODELS.get(name)
    return _INPUT_KINDS[name]


def model_square_only(name: str) -> bool:
    """Whether model ``name`` needs a square input (``aspect`` 1); unknown names fail with the valid ones."""
    MODELS.get(name)
    return _SQUARE_ONLY[name]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (all of them train: nothing is frozen in this product)."""
    return sum(p.numel() for p in model.parameters())


# Import the model modules so their builders register (they import the names defined above).
from backend.models import cnn, resnet, series1d, vae  # noqa: E402, F401
