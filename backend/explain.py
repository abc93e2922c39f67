"""Grad-CAM on plots: where in the image a model finds the evidence for a class.

``gradcam`` runs captum's ``LayerGradCam`` on a layer the model names in its ``cam_layers``
attribute (dotted paths into the model, deepest first; a number indexes a Sequential, ``-3`` counts
from its end): the deepest whose map is at least ``MIN_CAM_GRID`` pixels a side at the input size
(ResNet50's last stage is 7x7 at 224 px but 1x1 at 32 px). It upsamples the maps to the input size and scales each to [0, 1]. ``overlay`` paints a map over
the plot. ``explain_files`` runs the prediction path's input loading (images and CSVs) first, so an
explained file is the picture the model classified.

"Does the model look at the anomaly?": for generated datasets the manifest records where each
anomaly lies (``params.location``, in sample indices) and where the plot lies in the image
(``plot_area``), so a sample index maps to a pixel column. ``anomaly_attention_share`` is the share
of a map's mass inside the anomaly's columns; ``attention_report`` averages it per class beside what a
uniform map would score (``docs/EXPLAIN.md``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor, nn

from backend.data.generate import MANIFEST_NAME
from backend.data.images import load_image_rgb
from backend.data.inputs import load_input, one_line
from backend.data.plotarea import Box, find_plot_area
from backend.data.render import PlotArea
from backend.data.transforms import to_tensor_batch
from backend.predict import Predictor
from backend.training.config import resolve_dataset

OVERLAY_ALPHA = 0.45  # weight of the colour map over the plot
COLOR_MAP = "jet"
MIN_CAM_GRID = 4  # a layer whose map is smaller than this a side says little about where; go shallower


class ExplainError(ValueError):
    """A model, dataset or input that cannot be explained, with what to do about it."""


@dataclass(frozen=True, eq=False)
class Explanation:
    """One file's Grad-CAM: the plot, its map (model input size) and the class the map is for."""

    filename: str
    image: np.ndarray | None = None  # (H, W, 3) uint8 as loaded (a CSV drawn as a plot)
    cam: np.ndarray | None = None  # (S, S) float32 in [0, 1]
    target: str | None = None
    error: str | None = None
    box: Box | None = None  # the plot-area crop the model saw; None: the whole image

    def overlay(self) -> np.ndarray:
        """The plot with the map painted over the part of it the model saw."""
        if self.box is None:
            return overlay(self.image, self.cam)
        top, bottom, left, right = self.box.top, self.box.bottom, self.box.left, self.box.right
        painted = self.image.copy()
        painted[top:bottom, left:right] = overlay(self.image[top:bottom, left:right], self.cam)
        return painted


def cam_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules named by ``model.cam_layers`` (deepest first) that exist in this model."""
    paths = getattr(model, "cam_layers", ())
    name = getattr(model, "model_name", type(model).__name__)
    found = []
    for path in paths:
        module = model
        try:
            for part in path.split("."):
                module = module[int(part)] if part.lstrip("-").isdigit() else getattr(module, part)
        except (AttributeError, IndexError, TypeError):
            continue  # e.g. "features.-3" in a network with two blocks
        found.append((path, module))
    if not found:
        raise ExplainError(f"model {name} declares no cam_layers it has, so Grad-CAM does not know which layer to read")
    return found


def _targets(logits: Tensor, target: int | Sequence[int] | None) -> Tensor:
    if target is None:
        return logits.argmax(1)
    targets = torch.as_tensor(target, device=logits.device).long().reshape(-1).expand(len(logits))
    if targets.min() < 0 or targets.max() >= logits.shape[1]:
        raise ExplainError(f"target class index out of range 0-{logits.shape[1] - 1}: {target}")
    return targets


def _logits_and_layer(model: nn.Module, images: Tensor) -> tuple[Tensor, nn.Module]:
    """Logits of the batch, and the deepest ``cam_layers`` entry whose map is at least
    ``MIN_CAM_GRID`` pixels a side at this input size (else the one with the largest map)."""
    candidates = cam_layers(model)
    sides: dict[int, int] = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, k=k: sides.__setitem__(k, min(out.shape[-2:])))
        for k, (_, module) in enumerate(candidates)
    ]
    try:
        with torch.no_grad():
            logits = model(images)["logits"]
    finally:
        for hook in hooks:
            hook.remove()
    chosen = next((k for k in range(len(candidates)) if sides.get(k, 0) >= MIN_CAM_GRID), None)
    if chosen is None:
        chosen = max(range(len(candidates)), key=lambda k: sides.get(k, 0))
    return logits, candidates[chosen][1]


def gradcam_with_targets(
    model: nn.Module, images: Tensor, target: int | Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``gradcam`` and the class index each map is for."""
    from captum.attr import LayerAttribution, LayerGradCam

    model.eval()
    images = images.detach().clone()  # a plain tensor even if it was made under inference_mode

    def logits_of(x: Tensor) -> Tensor:
        return model(x)["logits"]

    with torch.inference_mode(False), torch.enable_grad():
        logits, layer = _logits_and_layer(model, images)
        targets = _targets(logits, target)
        maps = LayerGradCam(logits_of, layer).attribute(images, target=targets, relu_attributions=True)
        maps = LayerAttribution.interpolate(maps.detach(), tuple(images.shape[-2:]), interpolate_mode="bilinear")
    maps = maps[:, 0].float().cpu().numpy()
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)
    return scaled.astype(np.float32), targets.cpu().numpy()


def gradcam(model: nn.Module, images: Tensor, target: int | Sequence[int] | None = None) -> np.ndarray:
    """Grad-CAM maps ``(N, H, W)`` float32 in [0, 1] for a normalised batch ``(N, 3, H, W)``.

    ``target`` is a class index (or one per image); None explains each image's predicted class.
    A map with no positive evidence anywhere is all zeros.
    """
    return gradcam_with_targets(model, images, target)[0]


def overlay(image_rgb: np.ndarray, cam: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The plot with the map painted over it in ``COLOR_MAP`` (resized to the plot): (H, W, 3) uint8."""
    height, width = image_rgb.shape[:2]
    resized = np.asarray(Image.fromarray(np.asarray(cam, dtype=np.float32)).resize((width, height), Image.BILINEAR))
    colours = matplotlib.colormaps[COLOR_MAP](np.clip(resized, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * image_rgb.astype(np.float32) + alpha * colours
    return blended.round().clip(0, 255).astype(np.uint8)


def _batch(predictor: Predictor, images: Sequence[np.ndarray]) -> Tensor:
    resized = np.stack([predictor.prepare(image) for image in images])
    return to_tensor_batch(resized, predictor.mean, predictor.std, predictor.runtime.device)


def explain_files(
    predictor: Predictor, files: Iterable[tuple[str, Path | str | bytes]], *, column: str | None = None
) -> list[Explanation]:
    """Grad-CAM of each file's predicted class; a file that cannot be read gets ``error``, the rest go on."""
    results: list[Explanation] = []
    for name, source in files:
        try:
            image, _ = load_input(source, filename=name, column=column)
        except (ValueError, OSError) as e:
            results.append(Explanation(filename=name, error=one_line(e)))
            continue
        results.append(explain_images(predictor, [image], [name])[0])
    return results


def explain_images(predictor: Predictor, images: Sequence[np.ndarray], names: Sequence[str]) -> list[Explanation]:
    """Grad-CAM of each decoded plot's predicted class (e.g. ``Prediction.image``), in one batch."""
    cams, targets = gradcam_with_targets(predictor.model, _batch(predictor, images))
    crops = predictor.preprocessing["crop"] != "none"  # then the map covers the plot area the model saw
    return [
        Explanation(name, image, cam, predictor.class_names[int(target)], box=find_plot_area(image, predictor.preprocessing["finder"]) if crops else None)
        for name, image, cam, target in zip(names, images, cams, targets, strict=True)
    ]


# --- does the model look at the anomaly? ----------------------------------------------------------


def anomaly_spans(location: dict) -> list[tuple[int, int]]:
    """A manifest ``location`` as ``[start, end)`` sample ranges (one per spike, segment or window)."""
    if "indices" in location:
        return [(int(i), int(i) + 1) for i in location["indices"]]
    if "segments" in location:
        return [(int(start), int(end)) for start, end in location["segments"]]
    return [(int(location["start"]), int(location["end"]))]


def anomaly_columns(record: dict, width: int, crop: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """The pixel column ranges ``[start, stop)`` of a manifest record's anomaly, in a map ``width`` wide.

    Sample ``i`` covers x from ``x(i - 0.5)`` to ``x(i + 0.5)``; every range keeps at least one column.
    ``crop`` = (left, right) image columns the model saw (the plot-area crop); default the whole image.
    """
    if "plot_area" not in record:
        raise ExplainError(
            f"{record.get('png', 'a sample')} has no plot_area in the manifest (generated before it was "
            "recorded); regenerate the dataset with python -m backend generate"
        )
    area = PlotArea(**record["plot_area"])
    offset, seen = crop if crop is not None else (0, record["image_size"][0])
    scale = width / (seen - offset)
    ranges = []
    for start, end in anomaly_spans(record["params"]["location"]):
        left = math.floor((area.x(start - 0.5) - offset) * scale)
        right = math.ceil((area.x(end - 0.5) - offset) * scale)
        left = min(max(left, 0), width - 1)
        ranges.append((left, min(max(right, left + 1), width)))
    return ranges


def _seen_columns(predictor: Predictor, image: np.ndarray) -> tuple[int, int]:
    """The image columns ``(left, right)`` the model saw: the plot-area crop's, or the whole width."""
    if predictor.preprocessing["crop"] == "none":
        return 0, image.shape[1]
    box = find_plot_area(image, predictor.preprocessing["finder"])
    return box.left, box.right


def _column_mask(width: int, column_range: tuple[int, int] | Sequence[tuple[int, int]]) -> np.ndarray:
    ranges = [column_range] if isinstance(column_range[0], int | np.integer) else column_range
    mask = np.zeros(width, dtype=bool)
    for start, stop in ranges:
        mask[int(start) : int(stop)] = True
    return mask


def anomaly_attention_share(cam: np.ndarray, column_range: tuple[int, int] | Sequence[tuple[int, int]]) -> float:
    """Share of the map's mass in the columns ``[start, stop)`` (or several such ranges); NaN for an
    all-zero map."""
    cam = np.asarray(cam, dtype=np.float64)
    total = cam.sum()
    if total <= 0:
        return float("nan")
    return float(cam[:, _column_mask(cam.shape[1], column_range)].sum() / total)


def uniform_attention_share(width: int, column_range: tuple[int, int] | Sequence[tuple[int, int]]) -> float:
    """What a map that looks everywhere alike (or at random) scores: the share of the width covered."""
    return float(_column_mask(width, column_range).mean())


def attention_report(
    predictor: Predictor,
    dataset: Path | str,
    *,
    split: str = "test",
    per_class: int | None = None,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Per class: mean share of Grad-CAM mass inside the anomaly's columns, beside the uniform baseline.

    Maps are for each sample's true class (does the evidence for the right class sit on the anomaly?).
    Columns: class, n, empty (maps with no positive evidence, left out of ``share``), share, baseline,
    lift (share / baseline). ``per_class`` caps samples per class.
    """
    dataset = resolve_dataset(str(dataset))  # a bare name is looked up under DATA_DIR, as for training
    manifest_path = dataset / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ExplainError(
            f"{dataset} has no {MANIFEST_NAME}: the anomaly's place is known only for generated datasets"
        )
    records = [r for r in json.loads(manifest_path.read_text())["samples"] if r["split"] == split]
    records = [r for r in records if r["class"] in predictor.class_names]
    if per_class is not None:
        by_class: dict[str, list[dict]] = {}
        for record in records:
            by_class.setdefault(record["class"], []).append(record)
        records = [r for group in by_class.values() for r in group[:per_class]]
    if not records:
        raise ExplainError(f"{dataset} has no {split} samples of this model's classes")
    width = predictor.input_shape[1]
    rows = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        images = [load_image_rgb(dataset / r["png"]) for r in chunk]
        targets = [predictor.class_names.index(r["class"]) for r in chunk]
        cams, _ = gradcam_with_targets(predictor.model, _batch(predictor, images), targets)
        for record, cam, image in zip(chunk, cams, images, strict=True):
            columns = anomaly_columns(record, width, _seen_columns(predictor, image))
            rows.append(
                {
                    "class": record["class"],
                    "share": anomaly_attention_share(cam, columns),
                    "baseline": uniform_attention_share(width, columns),
                }
            )
    table = (
        pd.DataFrame(rows)
        .groupby("class", sort=True)
        .agg(
            n=("share", "size"),
            empty=("share", lambda shares: int(shares.isna().sum())),
            share=("share", "mean"),
            baseline=("baseline", "mean"),
        )
    )
    table["lift"] = table["share"] / table["baseline"]
    return table.reset_index()
