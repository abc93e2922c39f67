"""The Train page's form, built from ``TrainConfig`` itself so it always has every training option.

Each field of the dataclass becomes a widget chosen by its type (name options become select boxes
over their registry), grouped as the training engine groups them; a field the groups do not know
yet lands under "Other" instead of going missing. Defaults are ``TrainConfig``'s overlaid with the
chosen model's recommended values (``model_defaults``, the seeds' hyperparameters); widget keys
carry the model name, so switching model brings that model's defaults and keeps what was typed for
the other. Model constructor options (``model_kwargs``) come from the model builder's signature.
Validation is ``TrainConfig``'s own, run by ``backend.runs.launch`` before a run is queued.
Options that do nothing for the current choices (SGD momentum under Adam, plateau settings under
cosine...) are not drawn (``APPLIES``); "clone into the form" starts from a stored run's config.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from backend.data.plotarea import CROPS, FINDER_VERSIONS, POLARITIES, RESIZES
from backend.data.transforms import AUGMENTATIONS
from backend.device import PRECISIONS
from backend.models import MODELS, model_defaults, model_input_kind, model_square_only
from backend.runs.executors import EXECUTORS, default_executor
from backend.training.config import FIELD_DEFAULTS, FIELD_HELP, FIELD_NAMES, FIELD_TYPES
from backend.training.losses import CLASS_WEIGHTINGS, LOSSES
from backend.training.optim import OPTIMIZERS, SCHEDULERS
from backend.training.regularize import SAMPLERS
from dashboard.widgets import run_label

GROUPS: dict[str, tuple[str, ...]] = {
    "Model": ("name", "model_kwargs"),
    "Data": ("data", "image_size", "aspect", "crop", "finder", "resize", "polarity", "test_fraction", "val_fraction",
             "workers"),
    "Optimisation": (
        "epochs", "batch_size", "lr", "optimizer", "weight_decay", "momentum", "nesterov", "scheduler",
        "plateau_factor", "plateau_patience", "warmup_epochs", "grad_clip", "ema_decay", "early_stopping_patience",
    ),
    "Imbalance": ("loss", "class_weighting", "beta", "gamma", "tau", "label_smoothing", "sampler"),
    "Augmentation": ("augmentation", "severity", "mixup_alpha", "cutmix_alpha"),
    "Distillation": ("distill_from", "distill_with", "distill_weight", "distill_temperature"),
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
    "finder": lambda: list(FINDER_VERSIONS),
    "polarity": lambda: list(POLARITIES),
    "resize": lambda: list(RESIZES),
}
COLUMNS = 3
EXECUTOR_FIELD, ADDRESS_FIELD = "executor", "ray_address"  # in config_form's result, not TrainConfig options
EXECUTOR_LABELS = {"local": "this machine", "ray": "Ray cluster"}

# Options that apply only to some choices made above them in the form (each group lists the choice
# first): the form draws an option only while its rule holds, so a user never tunes a knob that does
# nothing. Rules see the values chosen so far; a hidden option is left out of the config (its default).
APPLIES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "momentum": lambda v: v.get("optimizer") == "sgd",
    "nesterov": lambda v: v.get("optimizer") == "sgd",
    "plateau_factor": lambda v: v.get("scheduler") == "plateau",
    "plateau_patience": lambda v: v.get("scheduler") == "plateau",
    "warmup_epochs": lambda v: v.get("scheduler") == "cosine",
    "beta": lambda v: v.get("loss") == "cb_focal" or v.get("class_weighting") == "effective",
    "gamma": lambda v: v.get("loss") in {"focal", "cb_focal"},
    "tau": lambda v: v.get("loss") == "logit_adjusted",
    "severity": lambda v: v.get("augmentation") not in {None, "none"},
    # A series model reads the CSV's numbers: image size, plot crop, resize, polarity and image mixing do nothing for it.
    "image_size": lambda v: _reads_images(v),
    "aspect": lambda v: _reads_images(v) and not _square_only(v),
    "crop": lambda v: _reads_images(v),
    "finder": lambda v: _reads_images(v) and v.get("crop", "plot_area") == "plot_area",
    "polarity": lambda v: _reads_images(v),
    "resize": lambda v: _reads_images(v),
    "mixup_alpha": lambda v: _reads_images(v),
    "cutmix_alpha": lambda v: _reads_images(v),
    "distill_with": lambda v: bool(v.get("distill_from")),
    "distill_weight": lambda v: bool(v.get("distill_from")),
    "distill_temperature": lambda v: bool(v.get("distill_from")),
}
CLONE_KEY = "train_clone"  # session state: a run's config waiting to be put into the form
CLONE_BASE_KEY = "train_clone_base"  # session state: the cloned config the form's defaults come from


def _reads_images(values: dict[str, Any]) -> bool:
    model = values.get("model")
    return model is None or model not in MODELS.names() or model_input_kind(model) == "image"


def _square_only(values: dict[str, Any]) -> bool:
    model = values.get("model")
    return model in MODELS.names() and model_square_only(model)


def applies(name: str, values: dict[str, Any]) -> bool:
    """Whether option ``name`` does anything given the ``values`` chosen so far."""
    rule = APPLIES.get(name)
    return rule is None or rule(values)


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


def teacher_choices(
    runs: pd.DataFrame, dataset: str | None, current: int = 0, none: str = "none (no teacher)", exclude: int = 0
) -> dict[int, str]:
    """The runs that may teach a run on ``dataset`` (completed runs on the same folder, newest
    first) after ``none``, less ``exclude`` (the first teacher, when choosing the second); a cloned
    run's teacher that no longer fits stays listed, marked with why, so the clone shows what it was
    (validation then refuses it with the same reason)."""
    choices = {0: none}
    if dataset and not runs.empty:
        wanted = Path(dataset).resolve()
        for _, run in runs[runs["status"] == "completed"].iterrows():
            if int(run["id"]) == exclude:
                continue
            if run["dataset"] and Path(run["dataset"]).resolve() == wanted:
                choices[int(run["id"])] = run_label(run)
    if current and current not in choices:
        why = "already the first teacher" if current == exclude else "not a completed run on this dataset"
        choices[int(current)] = f"#{int(current)} ({why})"
    return choices


TEACHER_WIDGETS = {  # option -> (label, what 0 means)
    "distill_from": ("teacher (distill from)", "none (no teacher)"),
    "distill_with": ("second teacher, averaged", "none (one teacher)"),
}


def _teacher_widget(name: str, values: dict[str, Any], default: Any, key: str, help: str | None) -> int:
    """A select box over ``teacher_choices`` for ``distill_from`` or ``distill_with`` (which leaves
    out the first teacher)."""
    from dashboard import loaders

    label, none = TEACHER_WIDGETS[name]
    exclude = int(values.get("distill_from") or 0) if name == "distill_with" else 0
    current = int(default or 0)
    choices = teacher_choices(loaders.all_runs(loaders.store_url()), values.get("data"), current, none, exclude)
    keys = list(choices)
    return st.selectbox(label, keys, index=keys.index(current), format_func=choices.get, key=key, help=help)


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


def _executor_widgets() -> dict[str, Any]:
    """"Run on": this machine (local subprocess) or a Ray cluster (its job API address)."""
    import os

    from backend.runs.executors.ray import DEFAULT_ADDRESS, RAY_ADDRESS_ENV

    try:
        default = default_executor()
    except ValueError:
        default = "local"  # a bad RUN_EXECUTOR: launch says so
    left, right = st.columns([1, 2])
    executor = left.radio("Run on", EXECUTORS, index=EXECUTORS.index(default), format_func=EXECUTOR_LABELS.get,
                          horizontal=True, key="train_executor",
                          help="local: a subprocess of this machine; Ray cluster: a Ray job on any node")  # fmt: skip
    address = right.text_input("Ray address", value=os.environ.get(RAY_ADDRESS_ENV) or DEFAULT_ADDRESS,
                               key="train_ray_address", help="the cluster's job API (ignored when run locally)")  # fmt: skip
    return {EXECUTOR_FIELD: executor, ADDRESS_FIELD: address.strip() or None}


def config_form(model: str, datasets: dict[str, str], base: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Draw the form for ``model``; on launch return the chosen options (with ``model``), else None.

    The result also holds ``executor`` and ``ray_address`` (``split_executor`` takes them out).
    ``datasets`` maps dataset paths to display names; ``base`` (a cloned run's config) overrides the
    model's defaults. Not an ``st.form``: which options are drawn follows the live choices
    (``APPLIES``), so every widget reruns the page; only the "Launch run" button launches.
    """
    defaults = {**defaults_for(model), **(base or {})}
    values: dict[str, Any] = {"model": model}
    for title, names in grouped_fields().items():
        with st.expander(title, expanded=title in EXPANDED):
            columns = st.columns(COLUMNS)
            position = 0
            for name in names:
                if name == "model_kwargs" or not applies(name, values):
                    continue
                with columns[position % COLUMNS]:
                    key = f"train_{model}_{name}"
                    if name in TEACHER_WIDGETS:  # a run id: chosen among the runs that may teach
                        values[name] = _teacher_widget(name, values, defaults.get(name), key, FIELD_HELP[name])
                    else:
                        values[name] = _widget(
                            name, FIELD_TYPES[name], defaults.get(name), key, FIELD_HELP.get(name), datasets
                        )
                position += 1
            if "model_kwargs" in names:
                st.caption(f"{model} options")
                kwargs = {}
                kwarg_columns = st.columns(COLUMNS)
                options = {**model_options(model), **(defaults.get("model_kwargs") or {})}
                for i, (option, default) in enumerate(options.items()):
                    with kwarg_columns[i % COLUMNS]:
                        given, value = _model_kwarg_widget(option, default, f"train_{model}_kw_{option}")
                    if given:
                        kwargs[option] = value
                values["model_kwargs"] = kwargs
    values.update(_executor_widgets())
    launched = st.button("Launch run", type="primary", icon=":material/rocket_launch:", key="train_launch")
    return values if launched else None


def split_executor(values: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """``config_form``'s result as (training options, executor, Ray address)."""
    options = dict(values)
    executor, address = options.pop(EXECUTOR_FIELD, None), options.pop(ADDRESS_FIELD, None)
    return options, executor, address if executor == "ray" else None



# --- clone into the form ----------------------------------------------------------------------------


def request_clone(config: dict[str, Any]) -> None:
    """Put a run's config into the Train form on its next draw (the caller switches to the Train page)."""
    st.session_state[CLONE_KEY] = dict(config)


def take_clone(datasets: dict[str, str]) -> tuple[dict[str, Any] | None, list[str]]:
    """The config waiting to be cloned (or None) and notes on what could not be carried over.

    The form's widgets of that model are reset first, so they take the cloned values as defaults.
    Options this code no longer knows are dropped, and a dataset that is gone is left to the user.
    """
    config = st.session_state.pop(CLONE_KEY, None)
    if config is None:
        return None, []
    notes = []
    unknown = sorted(set(config) - set(FIELD_NAMES))
    if unknown:
        notes.append(f"options this version does not have were left out: {', '.join(unknown)}")
    base = {k: v for k, v in config.items() if k in FIELD_NAMES}
    if base.get("data") not in datasets:
        notes.append(f"its dataset {base.get('data')!r} is not under DATA_DIR any more; pick one")
        base.pop("data", None)
    model = base.get("model")
    if model not in MODELS.names():
        notes.append(f"its model {model!r} is not available")
        return None, notes
    for key in [k for k in st.session_state if str(k).startswith(f"train_{model}_") or k == "train_model"]:
        del st.session_state[key]  # widgets drawn afresh take the cloned values as their defaults
    if base.get("name"):
        base["name"] = f"{base['name']} (clone)"
    st.session_state[CLONE_BASE_KEY] = base  # kept: the defaults must not change under the widgets on a rerun
    return base, notes


def clone_base(model: str) -> dict[str, Any] | None:
    """The cloned config the form for ``model`` starts from (None: the model's own defaults)."""
    base = st.session_state.get(CLONE_BASE_KEY)
    return base if base is not None and base.get("model") == model else None
