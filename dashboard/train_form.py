"""The Train page's form, built from ``TrainConfig`` itself so it always has every training option.

Each field of the dataclass becomes a widget chosen by its type (name options become select boxes
over their registry), grouped as the training engine groups them; a field the groups do not know
yet lands under "Other" instead of going missing. Defaults are ``TrainConfig``'s overlaid with the
chosen model's recommended values (``model_defaults``, the seeds' hyperparameters); widget keys
carry the model name, so switching model brings that model's defaults and keeps what was typed for
the other. Model constructor options (``model_kwargs``) come from the model builder's signature.
Validation is ``TrainConfig``'s own, run by ``backend.runs.launch`` before a run is queued.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from typing import Any

import streamlit as st

from backend.data.plotarea import CROPS
from backend.data.transforms import AUGMENTATIONS
from backend.device import PRECISIONS
from backend.models import MODELS, model_defaults
from backend.training.config import FIELD_DEFAULTS, FIELD_HELP, FIELD_NAMES, FIELD_TYPES
from backend.training.losses import CLASS_WEIGHTINGS, LOSSES
from backend.training.optim import OPTIMIZERS, SCHEDULERS
from backend.training.regularize import SAMPLERS

GROUPS: dict[str, tuple[str, ...]] = {
    "Model": ("name", "model_kwargs"),
    "Data": ("data", "image_size", "crop", "test_fraction", "val_fraction", "workers"),
    "Optimisation": (
        "epochs", "batch_size", "lr", "optimizer", "weight_decay", "momentum", "nesterov", "scheduler",
        "plateau_factor", "plateau_patience", "warmup_epochs", "grad_clip", "ema_decay", "early_stopping_patience",
    ),
    "Imbalance": ("loss", "class_weighting", "beta", "gamma", "tau", "label_smoothing", "sampler"),
    "Augmentation": ("augmentation", "severity", "mixup_alpha", "cutmix_alpha"),
    "Runtime": ("seed", "device", "precision"),
}  # fmt: skip
EXPANDED = ("Model", "Data", "Optimisation")

CHOICES: dict[str, Callable[[], list[str]]] = {
    "optimizer": OPTIMIZERS.names,
    "scheduler": SCHEDULERS.names,
    "loss": LOSSES.names,
    "class_weighting": CLASS_WEIGHTINGS.names,
    "sampler": SAMPLERS.names,
    "augmentation": AUGMENTATIONS.names,
    "precision": lambda: list(PRECISIONS),
    "device": lambda: ["auto", "cpu", "cuda"],
    "crop": lambda: list(CROPS),
}
COLUMNS = 3


def grouped_fields() -> dict[str, list[str]]:
    """Every TrainConfig field except ``model`` (chosen above the form), in its group."""
    known = {name for names in GROUPS.values() for name in names}
    groups = {title: [n for n in names if n in FIELD_NAMES] for title, names in GROUPS.items()}
    other = [n for n in FIELD_NAMES if n not in known and n != "model"]
    if other:
        groups["Other"] = other
    return groups


def defaults_for(model: str) -> dict[str, Any]:
    """TrainConfig defaults with the model's recommended values on top."""
    return {**FIELD_DEFAULTS, **model_defaults(model)}


def model_options(model: str) -> dict[str, Any]:
    """The model builder's own options and their defaults (the model's recommended values first)."""
    signature = inspect.signature(MODELS.get(model))
    options = {
        name: (None if p.default is inspect.Parameter.empty else p.default)
        for name, p in signature.parameters.items()
        if name not in {"num_classes", "image_size"}
    }
    options.update(model_defaults(model).get("model_kwargs", {}))
    return options


def _step(default: float) -> float:
    """A +/- step of the default's order of magnitude (0.001 for a learning rate of 1e-3)."""
    if not default:
        return 0.01
    return 10.0 ** math.floor(math.log10(abs(default)))


def _widget(name: str, kind: str, default: Any, key: str, help: str | None, datasets: dict[str, str]) -> Any:
    """One widget for one option; returns its value."""
    label = name.replace("_", " ")
    if name == "data":
        paths = list(datasets)
        index = paths.index(default) if default in paths else 0
        return st.selectbox("dataset", paths, index=index, format_func=datasets.get, key=key, help=help)
    if name in CHOICES:
        options = CHOICES[name]()
        return st.selectbox(
            label, options, index=options.index(default) if default in options else 0, key=key, help=help
        )
    if kind == "bool":
        return st.checkbox(label, value=bool(default), key=key, help=help)
    if kind == "int":
        return st.number_input(label, value=int(default), step=1, key=key, help=help)
    if kind == "float":
        return st.number_input(label, value=float(default), step=_step(float(default)), format="%g", key=key, help=help)
    return st.text_input(label, value=str(default or ""), key=key, help=help)


def _model_kwarg_widget(name: str, default: Any, key: str) -> tuple[bool, Any]:
    """A widget for one model option; returns (given, value). Lists are typed comma-separated."""
    label = name.replace("_", " ")
    if isinstance(default, bool):
        return True, st.checkbox(label, value=default, key=key)
    if isinstance(default, int):
        return True, st.number_input(label, value=default, step=1, key=key)
    if isinstance(default, float):
        return True, st.number_input(label, value=default, step=_step(default), format="%g", key=key)
    if isinstance(default, list | tuple):
        text = st.text_input(label, value=", ".join(str(v) for v in default), key=key, help="comma-separated numbers")
        return True, _parse_list(name, text)
    text = st.text_input(label, value="" if default is None else str(default), key=key, help="empty = not set")
    return bool(text.strip()), text.strip()


def _parse_list(name: str, text: str) -> list | str:
    """``0.3, 0.3, 0.2`` -> ``[0.3, 0.3, 0.2]``; unparseable text is passed on for validation to reject."""
    try:
        return json.loads(f"[{text}]")
    except json.JSONDecodeError:
        return text


def config_form(model: str, datasets: dict[str, str]) -> dict[str, Any] | None:
    """Draw the form for ``model``; on submit return the chosen options (with ``model``), else None.

    ``datasets`` maps dataset paths to display names.
    """
    defaults = defaults_for(model)
    values: dict[str, Any] = {"model": model}
    with st.form(f"train_form_{model}", border=False):
        for title, names in grouped_fields().items():
            with st.expander(title, expanded=title in EXPANDED):
                columns = st.columns(COLUMNS)
                position = 0
                for name in names:
                    if name == "model_kwargs":
                        continue
                    with columns[position % COLUMNS]:
                        values[name] = _widget(
                            name,
                            FIELD_TYPES[name],
                            defaults.get(name),
                            f"train_{model}_{name}",
                            FIELD_HELP.get(name),
                            datasets,
                        )
                    position += 1
                if "model_kwargs" in names:
                    st.caption(f"{model} options")
                    kwargs = {}
                    kwarg_columns = st.columns(COLUMNS)
                    for i, (option, default) in enumerate(model_options(model).items()):
                        with kwarg_columns[i % COLUMNS]:
                            given, value = _model_kwarg_widget(option, default, f"train_{model}_kw_{option}")
                        if given:
                            kwargs[option] = value
                    values["model_kwargs"] = kwargs
        submitted = st.form_submit_button(
            "Launch run", type="primary", icon=":material/rocket_launch:", key="train_launch"
        )
    return values if submitted else None
