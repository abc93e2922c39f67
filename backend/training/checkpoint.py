"""Checkpoints: plain dicts of tensors and JSON-able values, written atomically, loaded safely.

Format (``docs/ARCHITECTURE.md``), loadable with ``torch.load(path, weights_only=True)``::

    {"format_version": 1, "model_name": str, "model_kwargs": dict, "class_names": list[str],
     "image_size": int, "normalization": {"mean": [3 floats], "std": [3 floats]},
     "state_dict": dict[str, Tensor], "epoch": int, "metrics": dict[str, float], "config": dict,
     "run_id": int | None, "temperature": float, "uncertainty": dict | None,
     "preprocessing": {"crop": "plot_area" | "none", "polarity": "light" | "none", "finder": 2 | 3,
                       "resize": "bilinear" | "ink"}}

``temperature`` (fitted on validation at the end of a run; divide logits by it) and ``uncertainty``
(``{"confidence_threshold", "ood", "ood_threshold"}``, see ``backend/evaluation/ood.py``) are filled
in when the run finishes; checkpoints written before they existed read back with 1.0 and None.
``preprocessing`` says how an image was prepared around the resize (``backend.data.plotarea``:
the crop before it, the polarity after it); a checkpoint without it was trained on whole images
as drawn and reads back as ``{"crop": "none", "polarity": "none", "finder": 2, "resize": "bilinear"}``;
one without an entry written before that entry existed reads back with that entry's value there.

The architecture comes back from the checkpoint (``model_name`` + ``model_kwargs``), never from the
current defaults, and the class list is the one the run trained with.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from backend.data.plotarea import preprocessing_of
from backend.errors import WorkbenchError

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_name", "model_kwargs", "class_names", "image_size", "normalization",
                 "state_dict", "epoch", "metrics", "config")  # fmt: skip


class CheckpointError(WorkbenchError, ValueError):
    """A file that is not a checkpoint of this product (or one it cannot rebuild)."""


def to_plain(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, paths and tuples turned into plain JSON-able Python."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def build_checkpoint(
    model: nn.Module,
    *,
    class_names: Sequence[str],
    image_size: int,
    normalization: Mapping[str, Sequence[float]],
    epoch: int,
    metrics: Mapping[str, float],
    config: Mapping[str, Any],
    run_id: int | None = None,
    temperature: float = 1.0,
    uncertainty: Mapping[str, Any] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint dict of ``model`` (weights copied to the CPU, so it loads on any machine)."""
    return {
        "format_version": FORMAT_VERSION,
        "model_name": model.model_name,
        "model_kwargs": to_plain(model.model_kwargs),
        "class_names": [str(name) for name in class_names],
        "image_size": int(image_size),
        "normalization": to_plain(normalization),
        "state_dict": {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()},
        "epoch": int(epoch),
        "metrics": to_plain(metrics),
        "config": to_plain(config),
        "run_id": None if run_id is None else int(run_id),
        "temperature": float(temperature),
        "uncertainty": None if uncertainty is None else to_plain(uncertainty),
        "preprocessing": to_plain(preprocessing_of({"preprocessing": preprocessing})),
    }


def save_checkpoint(path: str | Path, checkpoint: Mapping[str, Any]) -> Path:
    """Write ``checkpoint`` to a temp file beside ``path`` and rename it into place.

    A crash mid-write leaves the previous file intact, never half a checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(dict(checkpoint), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; checkpoints are read by the dashboard too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at ``path``, checked for the keys this product writes.

    Every refusal is a :class:`CheckpointError` in our words (empty, truncated, not a checkpoint of
    this product), never torch's text with its advice to turn ``weights_only`` off; when ``path`` is
    a run's ``best.pt`` and its ``last.pt`` loads, the message says so.
    """
    path = Path(path)
    try:
        return _read_checked(path)
    except CheckpointError as e:
        raise CheckpointError(f"{e}{_fallback_hint(path)}") from e.__cause__


def _read_checked(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - on arbitrary bytes torch's unpickler raises anything (KeyError, ...)
        raise CheckpointError(_unreadable(path, size, e)) from e
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f"checkpoint {path} is not a checkpoint of this product: it holds a {type(checkpoint).__name__}, "
            "not a checkpoint dict"
        )
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"checkpoint {path} is not a checkpoint of this product; missing: {', '.join(missing)}")
    if checkpoint["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {checkpoint['format_version']}, newer than this code reads "
            f"({FORMAT_VERSION}); update the workbench"
        )
    checkpoint.setdefault("temperature", 1.0)  # written before calibration existed: uncalibrated
    checkpoint.setdefault("uncertainty", None)
    checkpoint["preprocessing"] = preprocessing_of(checkpoint)  # none written before crops: whole images
    return checkpoint


def _unreadable(path: Path, size: int, error: Exception) -> str:
    """Why torch could not load the file, from what the file is (torch.save writes a zip archive)."""
    with path.open("rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"
    if is_zip and not zipfile.is_zipfile(path):  # a zip's directory is at its end: gone when cut short
        return f"checkpoint {path} is truncated: its {size:,} bytes end before the archive does (a copy cut short?)"
    if is_zip and isinstance(error, pickle.UnpicklingError):  # weights_only refused an object in it
        return (
            f"checkpoint {path} is not a checkpoint of this product (it holds objects beyond tensors and "
            "plain values); use a best.pt/last.pt that a run wrote"
        )
    return f"checkpoint {path} is not a checkpoint of this product (not a file torch.save wrote)"


def _fallback_hint(path: Path) -> str:
    """``; its last.pt (epoch N) loads: ...`` when a broken best.pt has a readable last.pt beside it."""
    last = path.with_name("last.pt")
    if path.name == "last.pt" or not last.is_file():
        return ""
    try:
        epoch = _read_checked(last)["epoch"]
    except CheckpointError:
        return ""
    return f"; {last} (epoch {epoch}) does load: use that file instead"


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the checkpoint's model with its weights, in eval mode on ``device``."""
    from backend.models import create_model

    checkpoint = read_checkpoint(path)
    try:
        model = create_model(
            checkpoint["model_name"],
            num_classes=len(checkpoint["class_names"]),
            image_size=checkpoint["image_size"],
            **checkpoint["model_kwargs"],
        )
        model.load_state_dict(checkpoint["state_dict"])
    except (ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"cannot rebuild the model stored in {path}: {e}") from e
    return model.to(device).eval(), checkpoint
