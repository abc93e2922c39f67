"""TrainConfig: every option of one training run in a typed dataclass, validated once.

The config is filled from a JSON/YAML file and/or CLI flags (flags win), completed with the chosen
model's recommended defaults (``backend.models.model_defaults``) for every option the user did not
set, validated before anything trains, and stored whole (``dataclasses.asdict``) in the run row and
in every checkpoint. Each field's ``help`` is its comment: it documents the field here and becomes
the ``--help`` text of its flag (``add_config_arguments``), so the two never drift apart.

Importing this module is cheap (no torch): the run manager and the dashboard import it. Building a
config imports torch, for the model defaults and the registries it validates against.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from backend.config import data_dir
from backend.data.plotarea import (
    FINDER_VERSIONS,
    PLOT_AREA_VERSION,
    RESIZES,
    check_aspect,
    check_crop,
    check_finder,
    check_polarity,
    check_resize,
    input_shape,
)
from backend.errors import WorkbenchError


class ConfigError(WorkbenchError, ValueError):
    """An option (or combination) that cannot train, with what to change."""


def option(default: Any, help: str) -> Any:
    """A dataclass field with its comment kept as metadata (read back for CLI ``--help``)."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    # --- what to train --------------------------------------------------------------------------
    data: str = option("", "dataset folder, root/{train,test}/<class>/* or root/<class>/*; a bare name is looked up under DATA_DIR")
    model: str = option("visual_cnn", "model registry name (backend.models.list_models())")
    model_kwargs: dict = option({}, "extra model constructor arguments, e.g. latent_dim/recon_weight/kl_weight/class_weight (VAE), pretrained/weights_file (resnet50)")
    name: str = option("", "run name shown in the dashboard; empty = '<model> on <dataset>'")
    # --- data -----------------------------------------------------------------------------------
    image_size: int = option(128, "input height in pixels (and width, at aspect 1); every image is decoded once to this size")
    aspect: float = option(1.0, "input width / height, from 0.25 to 4: the crop is squeezed to image_size rows by round(image_size x aspect) columns (training and prediction alike, recorded in the checkpoint); 1 = square; the VAE needs 1")
    crop: str = option("plot_area", "plot_area = crop every image to its axes' data area before resizing (training and prediction alike, recorded in the checkpoint); none = the whole image")
    finder: int = option(PLOT_AREA_VERSION, f"plot-area finder version for crop = plot_area, one of {', '.join(map(str, FINDER_VERSIONS))} (docs/CROP.md): this build's newest by default; an older one reproduces an older run's crops, to A/B a finder")
    polarity: str = option("none", "light = invert dark-theme images (median grey under 128) after resizing, so every plot is darker lines on a lighter face (training and prediction alike, recorded in the checkpoint); none = colours as drawn")
    resize: str = option("bilinear", f"how the crop is squeezed to image_size, one of {', '.join(RESIZES)}: ink = thicken the drawing by the squeeze factor first, so thin lines keep their contrast (training and prediction alike, recorded in the checkpoint); bilinear = as drawn")
    test_fraction: float = option(0.25, "share of each class held out for testing when the dataset has no test/ folder")
    val_fraction: float = option(0.15, "share of each train class held out for validation (best epoch, plateau, early stop) when the dataset has no val/ folder")
    augmentation: str = option("light", "augmentation preset for training images: none, light, medium, heavy, plot")
    severity: bool = option(False, "per-class severity: minority classes get a heavier preset than the base one")
    sampler: str = option("none", "none = shuffle; weighted = WeightedRandomSampler drawing every class equally often")
    workers: int = option(0, "DataLoader worker processes for albumentations presets (0 = in the training process)")
    # --- optimisation ---------------------------------------------------------------------------
    epochs: int = option(30, "passes over the training set")
    batch_size: int = option(32, "images per training step (at least 2: BatchNorm needs two)")
    lr: float = option(1e-3, "learning rate (the peak rate for onecycle and cosine)")
    weight_decay: float = option(0.0, "L2 penalty (decoupled for adamw)")
    optimizer: str = option("adam", "adam, adamw or sgd")
    momentum: float = option(0.9, "SGD momentum (sgd only)")
    nesterov: bool = option(False, "Nesterov momentum (sgd only, needs momentum > 0)")
    scheduler: str = option("plateau", "none, plateau (ReduceLROnPlateau on val macro-F1), onecycle, cosine (with warmup)")
    plateau_factor: float = option(0.5, "plateau: multiply the rate by this when val macro-F1 stalls")
    plateau_patience: int = option(3, "plateau: epochs without improvement before the rate drops")
    warmup_epochs: int = option(0, "cosine: epochs of linear warm-up before the cosine decay")
    # --- loss and class imbalance ---------------------------------------------------------------
    loss: str = option("ce", "ce, focal, cb_focal (class-balanced focal) or logit_adjusted")
    class_weighting: str = option("none", "per-class loss weights: none, balanced (n/(k*n_c)) or effective (effective number, beta)")
    beta: float = option(0.9999, "effective-number beta for cb_focal and class_weighting=effective")
    gamma: float = option(2.0, "focal loss focusing parameter (focal, cb_focal)")
    tau: float = option(1.0, "logit adjustment strength (logit_adjusted)")
    label_smoothing: float = option(0.0, "label smoothing epsilon in [0, 1)")
    # --- regularisation -------------------------------------------------------------------------
    mixup_alpha: float = option(0.0, "MixUp Beta(alpha, alpha); 0 = off")
    cutmix_alpha: float = option(0.0, "CutMix Beta(alpha, alpha); 0 = off (with MixUp, each batch picks one)")
    ema_decay: float = option(0.0, "exponential moving average of the weights, e.g. 0.999; 0 = off; evaluation and checkpoints use the average")
    grad_clip: float = option(0.0, "clip the gradient norm to this; 0 = off")
    early_stopping_patience: int = option(0, "stop after this many epochs without a better val macro-F1; 0 = off")
    # --- distillation (backend/training/distill.py) ----------------------------------------------
    distill_from: int = option(0, "knowledge distillation: id of a completed run (the teacher, e.g. a series_cnn run reading each plot's CSV) whose calibrated probabilities on the training items become part of each target; trained on the same dataset and never on this run's test images; 0 = off")
    distill_with: int = option(0, "distillation: a second teacher run (e.g. the image model beside a series_cnn distill_from), whose calibrated probabilities are averaged with the first's: the image + series ensemble as the teacher; the same checks; 0 = one teacher")
    distill_weight: float = option(0.5, "distillation: the teacher's share of each training target, in (0, 1]; the rest is the true label's one-hot")
    distill_temperature: float = option(1.0, "distillation: soften the teacher's probabilities as p^(1/T), from 0.5 to 10 (T > 1 flattens them)")
    # --- runtime --------------------------------------------------------------------------------
    seed: int = option(0, "seed for weights, shuffling, augmentation and the stratified split")
    device: str = option("auto", "auto (CUDA if present), cpu, cuda or cuda:N")
    precision: str = option("auto", "auto (bf16 where supported, fp16 on old GPUs, else fp32), fp32, bf16 or fp16 (CUDA only)")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """A validated config from user-set values; the model's defaults fill what they leave out."""
        values = dict(values)
        unknown = sorted(set(values) - set(FIELD_NAMES))
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(unknown)}; valid options: {', '.join(FIELD_NAMES)}")
        model = values.get("model", FIELD_DEFAULTS["model"])
        merged = _with_model_defaults(model, values)
        config = cls(**{name: _coerce(name, value) for name, value in merged.items()})
        # An absolute dataset path: the trainer subprocess may not share the caller's working folder.
        config.data = str(resolve_dataset(config.data))
        return config.validate()

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """A validated config from a JSON or YAML file."""
        return cls.from_dict(read_config_file(path))

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: Mapping[str, Any] | None = None) -> TrainConfig:
        """A validated config from ``base`` values, then ``--config FILE``, then the flags given."""
        return cls.from_dict(merge_args(args, base))

    def display_name(self) -> str:
        """The run's name: ``name`` if set, else '<model> on <dataset folder name>'."""
        return self.name or f"{self.model} on {Path(self.data).name}"

    def preprocessing(self) -> dict[str, Any]:
        """How an image is prepared around the resize (``backend.data.plotarea.prepare_image``): what
        the checkpoint records and the training cache is decoded and keyed with. The plot-area
        finder defaults to this build's newest (``PLOT_AREA_VERSION``); prediction uses the
        checkpoint's, so a run keeps the crops it trained on when the finder improves."""
        return {"crop": self.crop, "polarity": self.polarity, "finder": self.finder, "resize": self.resize,
                "aspect": self.aspect}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field: what the run row and checkpoints store."""
        return json.loads(json.dumps(asdict(self), default=str))

    def validate(self) -> TrainConfig:
        """Check every option and the dataset folder; raise ConfigError saying what to change."""
        for check in (_check_numbers, _check_names, _check_crop, _check_combinations, _check_runtime, _check_dataset,
                      _check_distillation):  # fmt: skip
            check(self)
        return self


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(TrainConfig))
FIELD_HELP: dict[str, str] = {f.name: f.metadata["help"] for f in fields(TrainConfig)}
FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(TrainConfig)}
FIELD_DEFAULTS: dict[str, Any] = {
    f.name: (f.default_factory() if f.default is MISSING else f.default) for f in fields(TrainConfig)
}


# Flags that each fill one key of model_kwargs; the model checks them like any model_kwargs key.
MODEL_KWARG_FLAGS: tuple[tuple[str, str, Any, str], ...] = (
    ("--latent-dim", "latent_dim", int, "vae_classifier: size of the latent code"),
    ("--recon-weight", "recon_weight", float, "vae_classifier: weight of the reconstruction MSE (averaged per pixel)"),
    ("--kl-weight", "kl_weight", float, "vae_classifier: weight of the KL term (averaged per latent dimension)"),
    ("--class-weight", "class_weight", float, "vae_classifier: weight of the classification loss"),
    ("--kl-warmup-epochs", "kl_warmup_epochs", int, "vae_classifier: epochs over which the KL weight ramps up from 0"),
    ("--pretrained", "pretrained", bool, "resnet50: start from torchvision's ImageNet weights in the local torch cache"),
    ("--weights", "weights_file", str, "resnet50: start from a local ResNet50 state dict file"),
)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (plus ``--config`` and the model_kwargs shortcuts).

    Flags default to "not given", so only what the user typed overrides the config file and the
    model's defaults. Values arrive as text and are converted (with clear errors) by ``from_dict``.
    """
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="JSON or YAML file of options (field: value); flags given here override it")  # fmt: skip
    group = parser.add_argument_group("training options (unset ones take the model's defaults, then these)")
    for name in FIELD_NAMES:
        flag, kind = "--" + name.replace("_", "-"), FIELD_TYPES[name]
        help_ = f"{FIELD_HELP[name]} (default: {FIELD_DEFAULTS[name]!r})"
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_)
        else:
            metavar = "JSON" if kind == "dict" else name.split("_")[-1].upper()
            group.add_argument(flag, metavar=metavar, default=argparse.SUPPRESS, help=help_)
    for flag, key, kind, help_ in MODEL_KWARG_FLAGS:
        if kind is bool:
            group.add_argument(flag, dest=f"model_kwarg:{key}", action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_)  # fmt: skip
        else:
            group.add_argument(flag, dest=f"model_kwarg:{key}", type=kind, metavar=key.split("_")[-1].upper(),
                               default=argparse.SUPPRESS, help=help_)  # fmt: skip


def merge_args(args: argparse.Namespace, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Option values: ``base``, overridden by the ``--config`` file, overridden by the flags given.

    ``model_kwargs`` merge key by key across the three, so ``--latent-dim 64`` keeps a file's
    ``recon_weight``.
    """
    given = vars(args)
    flags = {name: given[name] for name in FIELD_NAMES if name in given}
    shortcuts = {key.split(":", 1)[1]: value for key, value in given.items() if key.startswith("model_kwarg:")}
    flags["model_kwargs"] = {**_coerce("model_kwargs", flags.get("model_kwargs") or {}), **shortcuts}
    config_file = getattr(args, "config", None)
    layers = [dict(base or {}), read_config_file(config_file) if config_file else {}, flags]
    values: dict[str, Any] = {}
    model_kwargs: dict[str, Any] = {}
    for layer in layers:
        model_kwargs.update(_coerce("model_kwargs", layer.get("model_kwargs") or {}))
        values.update(layer)
    values["model_kwargs"] = model_kwargs
    return values


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The options in a ``.json`` or ``.yaml``/``.yml`` file (a mapping of field name -> value)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            values = yaml.safe_load(text)
        else:
            values = json.loads(text)
    except Exception as e:  # json and yaml raise different types; both mean "not parseable"
        raise ConfigError(f"cannot parse config file {path}: {e}") from e
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value, not {type(values).__name__}")
    return values


def _with_model_defaults(model: str, values: dict[str, Any]) -> dict[str, Any]:
    """User values over the model's recommended defaults; ``model_kwargs`` merge key by key."""
    from backend.models import model_defaults

    try:
        defaults = dict(model_defaults(model))
    except ValueError as e:
        raise ConfigError(str(e)) from e
    unknown = sorted(set(defaults) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"model_defaults({model!r}) names unknown option(s): {', '.join(unknown)}")
    merged = {**defaults, **values}
    merged["model_kwargs"] = {**defaults.get("model_kwargs", {}), **(values.get("model_kwargs") or {})}
    return merged


def _coerce(name: str, value: Any) -> Any:
    """``value`` as the field's type; YAML strings such as ``1e-3`` and JSON ints for floats are fine."""
    kind = FIELD_TYPES[name]
    try:
        if kind == "bool":
            return _as_bool(value)
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "dict":
            return _as_dict(value)
        if not isinstance(value, str | Path):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {_KIND_WORDS[kind]}, got {value!r}") from None


_KIND_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "dict": "a mapping", "str": "text"}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
        return value.lower() in {"true", "yes", "1"}
    raise ValueError


def _as_dict(value: Any) -> dict:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError
    return {str(k): (str(v) if isinstance(v, Path) else v) for k, v in value.items()}


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_numbers(c: TrainConfig) -> None:
    """Ranges of the numeric options."""
    for name in ("lr", "weight_decay", "momentum", "plateau_factor", "beta", "gamma", "tau", "label_smoothing",
                 "mixup_alpha", "cutmix_alpha", "ema_decay", "grad_clip", "test_fraction", "val_fraction",
                 "distill_weight", "distill_temperature"):  # fmt: skip
        _require(math.isfinite(getattr(c, name)), f"{name} must be a finite number, got {getattr(c, name)}")
    _require(16 <= c.image_size <= 1024, f"image_size must be between 16 and 1024 pixels, got {c.image_size}")
    _require(c.epochs >= 1, f"epochs must be at least 1, got {c.epochs}")
    _require(c.batch_size >= 2, f"batch_size must be at least 2 (BatchNorm needs two images), got {c.batch_size}")
    _require(c.lr > 0, f"lr must be positive, got {c.lr}")
    _require(c.weight_decay >= 0, f"weight_decay must be >= 0, got {c.weight_decay}")
    _require(0 <= c.momentum < 1, f"momentum must be in [0, 1), got {c.momentum}")
    _require(0 < c.plateau_factor < 1, f"plateau_factor must be in (0, 1), got {c.plateau_factor}")
    _require(c.plateau_patience >= 0, f"plateau_patience must be >= 0, got {c.plateau_patience}")
    _require(0 <= c.warmup_epochs < c.epochs, f"warmup_epochs must be in [0, epochs={c.epochs}), got {c.warmup_epochs}")
    _require(0 <= c.beta < 1, f"beta must be in [0, 1), e.g. 0.9999; got {c.beta}")
    _require(c.gamma >= 0, f"gamma must be >= 0, got {c.gamma}")
    _require(c.tau >= 0, f"tau must be >= 0, got {c.tau}")
    _require(0 <= c.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {c.label_smoothing}")
    _require(c.mixup_alpha >= 0 and c.cutmix_alpha >= 0, "mixup_alpha and cutmix_alpha must be >= 0 (0 = off)")
    _require(0 <= c.ema_decay < 1, f"ema_decay must be in [0, 1) (0 = off, e.g. 0.999), got {c.ema_decay}")
    _require(c.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {c.grad_clip}")
    _require(c.early_stopping_patience >= 0, f"early_stopping_patience must be >= 0 (0 = off), got {c.early_stopping_patience}")
    _require(c.seed >= 0, f"seed must be >= 0, got {c.seed}")
    _require(c.workers >= 0, f"workers must be >= 0, got {c.workers}")
    _require(0 < c.test_fraction < 1, f"test_fraction must be in (0, 1), got {c.test_fraction}")
    _require(0 < c.val_fraction < 1, f"val_fraction must be in (0, 1), e.g. 0.15; got {c.val_fraction}")


def _check_names(c: TrainConfig) -> None:
    """Every name option is in its registry; the error lists the valid names."""
    from backend.data.transforms import AUGMENTATIONS
    from backend.models import MODELS
    from backend.training.losses import CLASS_WEIGHTINGS, LOSSES
    from backend.training.optim import OPTIMIZERS, SCHEDULERS
    from backend.training.regularize import SAMPLERS

    for registry, value in ((MODELS, c.model), (OPTIMIZERS, c.optimizer), (SCHEDULERS, c.scheduler),
                            (LOSSES, c.loss), (CLASS_WEIGHTINGS, c.class_weighting),
                            (SAMPLERS, c.sampler), (AUGMENTATIONS, c.augmentation)):  # fmt: skip
        try:
            registry.get(value)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def _check_combinations(c: TrainConfig) -> None:
    """Options valid alone but not together.

    The loss, the model and the severity ladder are built once on dummy inputs, which runs the
    checks they make themselves (cb_focal with class weights, a VAE latent_dim of 1, a missing
    weights file, severity on the plot preset...). The model is built on the meta device: no memory,
    no initialisation.
    """
    import torch

    from backend.data.transforms import severity_presets
    from backend.models import create_model, model_square_only
    from backend.training.losses import build_loss

    _require(not c.nesterov or (c.optimizer == "sgd" and c.momentum > 0),
             "nesterov needs optimizer sgd with momentum > 0; drop --nesterov or use --optimizer sgd --momentum 0.9")  # fmt: skip
    try:
        if c.severity:
            severity_presets([1, 1], c.augmentation)
        build_loss(c.loss, class_counts=[1, 1], class_weighting=c.class_weighting, beta=c.beta, gamma=c.gamma,
                   tau=c.tau, label_smoothing=c.label_smoothing)  # fmt: skip
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")  # loading a weights file into meta tensors warns per tensor
            create_model(c.model, num_classes=2, image_size=c.image_size, **c.model_kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from None
    _require(c.aspect == 1 or not model_square_only(c.model),
             f"{c.model} reconstructs square images: it needs aspect 1, got {c.aspect:g}")  # fmt: skip


def _check_crop(c: TrainConfig) -> None:
    """The crop is one of backend.data.plotarea.CROPS, the finder one of FINDER_VERSIONS, the
    polarity one of POLARITIES, the resize one of RESIZES and the aspect in ASPECT_RANGE, giving an
    input at least MIN_IMAGE_SIZE wide."""
    try:
        check_crop(c.crop)
        check_finder(c.finder)
        check_polarity(c.polarity)
        check_resize(c.resize)
        check_aspect(c.aspect)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    from backend.models import MIN_IMAGE_SIZE

    width = input_shape(c.image_size, c.preprocessing())[1]
    _require(width >= MIN_IMAGE_SIZE, f"image_size x aspect gives an input {width} pixels wide; it must be at least {MIN_IMAGE_SIZE}")


def _check_runtime(c: TrainConfig) -> None:
    """The device exists and supports the precision (fp16 on a CPU fails here, not mid-run)."""
    from backend.device import make_runtime

    try:
        make_runtime(c.device, c.precision)
    except (ValueError, RuntimeError) as e:
        raise ConfigError(str(e)) from None


def _check_dataset(c: TrainConfig) -> None:
    """The dataset folder exists and scans into at least two non-empty classes (and, for a series
    model, every image has its CSV series: ``backend.training.series_data``)."""
    split = load_split(c)
    from backend.models import model_input_kind

    if model_input_kind(c.model) == "series":
        from backend.training.series_data import check_series_dataset

        check_series_dataset(c, split)


def _check_distillation(c: TrainConfig) -> None:
    """The distillation options' ranges and combinations. Whether the teacher run may teach this
    one needs the store: ``backend.runs.teacher.check_teacher``, run before a run is queued or trained."""
    from backend.training.distill import check_options

    check_options(c)


def resolve_dataset(data: str) -> Path:
    """The dataset folder ``data`` names: as given, else a folder of that name under DATA_DIR."""
    _require(bool(data), "no dataset given; pass --data DIR (a folder of class sub-folders)")
    given = Path(data).expanduser()
    for candidate in (given, data_dir() / given):
        if candidate.is_dir():
            return candidate.resolve()
    raise ConfigError(
        f"dataset folder not found: {given} (also looked in {data_dir() / given}); "
        "make one with `python -m backend generate --out DIR` or pass an existing folder to --data"
    )


def load_split(c: TrainConfig, *, drop_duplicates: bool = False):
    """Scan the config's dataset into its sorted classes and train/val/test samples (DatasetInfo).

    With ``drop_duplicates`` every file is hashed and an image whose bytes appear in an earlier
    split is removed from the later one (what training does; validating a config skips the reads).
    """
    from backend.data.dataset import DatasetError, drop_cross_split_duplicates, scan_dataset

    root = resolve_dataset(c.data)
    try:
        split = scan_dataset(root, test_fraction=c.test_fraction, val_fraction=c.val_fraction, seed=c.seed)
    except DatasetError as e:
        raise ConfigError(str(e)) from e
    if drop_duplicates:
        split = drop_cross_split_duplicates(split)
    for name, what in (("test", "to test on"), ("val", "to select the best epoch on")):
        _require(bool(getattr(split, name)), f"dataset {root} has no {name} images {what} (after removing copies "
                 f"of earlier splits); add a {name}/ folder with the same class folders, or more images per class "
                 "so a stratified split can hold some out")  # fmt: skip
    return split
