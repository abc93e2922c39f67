"""Dataset scanning and statistics for any ImageFolder-style folder (ours or the team's own).

Two layouts are accepted: ``root/{train,test}/<class>/*``, optionally with ``root/val/<class>/*``
(the split is the folders'), and ``root/<class>/*`` (a seeded stratified split is made here). When
there is no ``val/`` folder a seeded stratified ``val_fraction`` of train is held out for
validation. Classes are the sorted folder names and label ``i`` is ``classes[i]``.
``drop_cross_split_duplicates`` removes an image whose bytes appear in an earlier split (order
train, val, test) so no test item was seen in training or selection. Also the per-split statistics the Data page shows and the training
engine uses: class counts, imbalance ratio and two kinds of class weights.

No torch import: the dashboard calls this to show a dataset.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.model_selection import train_test_split

from backend import config
from backend.data.images import ImageError, verify_image
from backend.errors import WorkbenchError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLITS = ("train", "val", "test")  # the order duplicates are resolved in: a later split loses the copy
FOLDER_SPLITS = ("train", "test")  # the folders a split layout needs; val/ is optional
MANIFEST = "manifest.json"
_LAYOUT_HINT = "expected <root>/<class>/<image> or <root>/train/<class>/<image> and <root>/test/<class>/<image>"


class DatasetError(WorkbenchError, ValueError):
    """A folder that cannot be used as a dataset; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # index into DatasetInfo.classes


@dataclass
class DatasetInfo:
    root: Path
    classes: list[str]  # sorted folder names; label i is classes[i]
    train: list[Sample]
    test: list[Sample]
    split: str  # "folder" (had test/) or "stratified" (made here, seeded)
    unreadable: list[tuple[Path, str]]  # (path, reason), left out of train/test
    notes: list[str] = field(default_factory=list)  # what the scan decided that a user should know
    val: list[Sample] = field(default_factory=list)  # validation: val/ folder, or held out of train
    val_source: str = "none"  # "folder" (had val/), "stratified" (held out of train here) or "none"
    duplicates_removed: dict[str, int] = field(default_factory=dict)  # split -> copies dropped from it
    hashes: dict[Path, str] = field(default_factory=dict)  # sha256 of each file, once duplicates are checked

    def counts(self, split: str) -> dict[str, int]:
        """Images per class in ``split`` ("train", "val" or "test"), every class listed (zero if absent)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        counts = dict.fromkeys(self.classes, 0)
        for sample in getattr(self, split):
            counts[self.classes[sample.label]] += 1
        return counts


def scan_dataset(root, *, test_fraction: float = 0.25, val_fraction: float = 0.0, seed: int = 0,
                 verify_images: bool = False) -> DatasetInfo:  # fmt: skip
    """Find the classes and images of a dataset folder and split them into train, val and test.

    ``test_fraction`` only matters for the flat layout. ``val_fraction`` (0 = no validation split)
    is held out of train, stratified and seeded, when the dataset has no ``val/`` folder. With
    ``verify_images`` every file's header is checked; unreadable files are listed in ``unreadable``
    and left out of the splits instead of failing the scan.
    """
    root = Path(root).expanduser()
    _check_folder(root, "dataset folder")
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if any((root / split).is_dir() for split in SPLITS):
        info = _scan_split_folders(root, verify_images)
    else:
        info = _scan_flat(root, test_fraction, seed, verify_images)
    if info.val_source == "none" and val_fraction > 0:
        info.train, info.val, notes = _stratified_split(info.train, info.classes, val_fraction, seed, "validation")
        info.val_source = "stratified"
        info.notes.extend(notes)
    return info


def drop_cross_split_duplicates(info: DatasetInfo) -> DatasetInfo:
    """Remove every image whose bytes (sha256) appear in an earlier split (train, then val, then test).

    A copy of a training image in test would score the model on what it memorised. The counts go to
    ``info.duplicates_removed`` and a note; ``info.hashes`` keeps every file's digest (prediction
    rows are matched across runs by it).
    """
    paths = [s.path for split in SPLITS for s in getattr(info, split)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        info.hashes = dict(zip(paths, pool.map(file_sha256, paths), strict=True))
    seen: set[str] = set()
    for split in SPLITS:
        samples = getattr(info, split)
        kept = [s for s in samples if info.hashes[s.path] not in seen]
        seen.update(info.hashes[s.path] for s in samples)
        info.duplicates_removed[split] = len(samples) - len(kept)
        setattr(info, split, kept)
    removed = {split: n for split, n in info.duplicates_removed.items() if n}
    if removed:
        where = ", ".join(f"{n} from {split}" for split, n in removed.items())
        info.notes.append(f"removed images whose content also appears in an earlier split: {where}")
    return info


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes: the identity of a test item across runs and datasets."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_datasets(data_dir=None) -> list[Path]:
    """Sub-folders of ``data_dir`` (default ``config.data_dir()``) that scan as datasets, sorted."""
    base = Path(data_dir) if data_dir is not None else config.data_dir()
    if not base.is_dir():
        return []
    found = []
    for folder in _visible_subfolders(base):
        try:
            scan_dataset(folder)
        except DatasetError:
            continue
        found.append(folder)
    return found


def imbalance_ratio(counts: Mapping[str, int]) -> float:
    """Largest class count over smallest; ``inf`` when a class has no images."""
    if not counts:
        raise ValueError("imbalance ratio of no classes is undefined")
    smallest = min(counts.values())
    return math.inf if smallest == 0 else max(counts.values()) / smallest


def balanced_class_weights(counts: Mapping[str, int]) -> dict[str, float]:
    """``n / (k * n_c)``: scikit-learn's "balanced" weights; a class of average size gets 1."""
    _check_counts(counts)
    total, k = sum(counts.values()), len(counts)
    return {name: total / (k * n) for name, n in counts.items()}


def effective_number_weights(counts: Mapping[str, int], beta: float = 0.9999) -> dict[str, float]:
    """Class-balanced weights of Cui et al. (2019): ``(1 - beta) / (1 - beta**n_c)``, mean 1 over classes.

    ``beta`` near 1 approaches inverse frequency; ``beta = 0`` gives equal weights.
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    _check_counts(counts)
    raw = {name: (1.0 - beta) / (1.0 - beta**n) for name, n in counts.items()}
    scale = len(raw) / sum(raw.values())
    return {name: w * scale for name, w in raw.items()}


def dataset_summary(root, *, test_fraction: float = 0.25, seed: int = 0, beta: float = 0.9999) -> dict:
    """Everything the Data page shows about a dataset, as a JSON-able dict (images verified)."""
    info = scan_dataset(root, test_fraction=test_fraction, seed=seed, verify_images=True)
    shown = [split for split in SPLITS if split != "val" or info.val]  # val only when the dataset has val/
    counts = {split: info.counts(split) for split in shown}
    notes = list(info.notes)
    manifest = _read_manifest(info.root, notes)
    return {
        "root": str(info.root),
        "name": info.root.name,
        "classes": info.classes,
        "split": info.split,
        "counts": counts,
        "total_images": sum(len(getattr(info, split)) for split in SPLITS),
        "imbalance_ratio": {split: _finite_or_none(imbalance_ratio(counts[split])) for split in shown},
        "class_weights": {
            "balanced": balanced_class_weights(counts["train"]),
            "effective_number": effective_number_weights(counts["train"], beta),
            "beta": beta,
        },
        "unreadable": [{"path": str(path), "reason": reason} for path, reason in info.unreadable],
        "notes": notes,
        "manifest": manifest,
    }


# --- scanning ---------------------------------------------------------------------------------


def _scan_split_folders(root: Path, verify: bool) -> DatasetInfo:
    """``root/{train,test}/<class>/*`` (+ optional ``val/``): same classes in each; every class needs train images."""
    missing = [split for split in FOLDER_SPLITS if not (root / split).is_dir()]
    if missing:
        present = next(split for split in SPLITS if split not in missing and (root / split).is_dir())
        raise DatasetError(
            f"dataset {root} has {present}/ but no {missing[0]}/ folder; add {root / missing[0]} "
            f"with the same class folders, or put the class folders directly in {root}"
        )
    splits = [split for split in SPLITS if (root / split).is_dir()]
    files = {split: _class_files(root / split) for split in splits}
    for split in splits[1:]:
        _check_same_classes(root, files["train"], files[split], split)
    classes = sorted(files["train"])
    unreadable = _drop_unreadable(files, verify)
    in_all = _unreadable_by_split(root, unreadable)
    _check_class_files(root / "train", files["train"], unreadable, in_all)
    notes = [note for split in splits[1:] for note in _held_out_notes(root / split, split, files[split], in_all)]
    return DatasetInfo(
        root=root,
        classes=classes,
        train=_samples(files["train"], classes),
        test=_samples(files["test"], classes),
        split="folder",
        unreadable=unreadable,
        notes=notes,
        val=_samples(files.get("val", {}), classes),
        val_source="folder" if "val" in files else "none",
    )


def _scan_flat(root: Path, test_fraction: float, seed: int, verify: bool) -> DatasetInfo:
    """``root/<class>/*``: a seeded stratified split; single-image classes go to train only."""
    files = {"all": _class_files(root)}
    unreadable = _drop_unreadable(files, verify)
    _check_class_files(root, files["all"], unreadable)
    classes = sorted(files["all"])
    samples = _samples(files["all"], classes)
    train, test, notes = _stratified_split(samples, classes, test_fraction, seed, "test")
    return DatasetInfo(root, classes, train, test, "stratified", unreadable, notes)


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files (recursive, sorted); hidden files and folders are skipped."""
    classes = {}
    for class_dir in _visible_subfolders(folder):
        images = [
            path
            for path in sorted(class_dir.rglob("*"))
            if path.suffix.lower() in IMAGE_EXTENSIONS
            and path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(class_dir).parts)
        ]
        classes[class_dir.name] = images
    return classes


def _visible_subfolders(folder: Path) -> list[Path]:
    """Sub-folders in sorted order, without hidden ones (.git, .ipynb_checkpoints, macOS ._ files)."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise DatasetError(f"cannot list folder {folder}: {e.strerror or e}") from e


def _drop_unreadable(files: dict[str, dict[str, list[Path]]], verify: bool) -> list[tuple[Path, str]]:
    """When verifying, remove files whose header does not check out and return them with the reason."""
    if not verify:
        return []
    paths = [path for per_class in files.values() for images in per_class.values() for path in images]
    with ThreadPoolExecutor(max_workers=8) as pool:
        reasons = dict(zip(paths, pool.map(_unreadable_reason, paths), strict=True))
    for per_class in files.values():
        for name, images in per_class.items():
            per_class[name] = [path for path in images if reasons[path] is None]
    return [(path, reason) for path, reason in reasons.items() if reason is not None]


def _unreadable_reason(path: Path) -> str | None:
    try:
        verify_image(path)
    except ImageError as e:
        return str(e)
    return None


def _samples(files: dict[str, list[Path]], classes: list[str]) -> list[Sample]:
    return [Sample(path, label) for label, name in enumerate(classes) for path in files.get(name, [])]


def _stratified_split(
    samples: list[Sample], classes: list[str], fraction: float, seed: int, held_out: str
) -> tuple[list[Sample], list[Sample], list[str]]:
    """Hold out ``fraction`` of ``samples`` (the ``held_out`` split, named in notes) with
    scikit-learn's stratified ``train_test_split``; say what could not be stratified."""
    sizes = [sum(s.label == label for s in samples) for label in range(len(classes))]
    singles = [s for s in samples if sizes[s.label] < 2]
    splittable = [s for s in samples if sizes[s.label] >= 2]
    notes = []
    if singles:
        names = ", ".join(repr(classes[s.label]) for s in singles)
        notes.append(f"classes with a single image went to train only ({held_out} has none of them): {names}")
    if not splittable:
        return samples, [], notes
    k = len({s.label for s in splittable})
    # At least one held-out image per class where possible and at least one train image per class.
    n_test = min(max(math.ceil(fraction * len(splittable)), k), len(splittable) - k)
    train, test = train_test_split(
        splittable, test_size=n_test, stratify=[s.label for s in splittable], random_state=seed
    )
    absent = sorted({classes[s.label] for s in splittable} - {classes[s.label] for s in test})
    if absent:
        notes.append(f"too few images to put every class in {held_out}; none for: {', '.join(absent)}")
    order = {s: i for i, s in enumerate(samples)}
    return sorted(singles + train, key=order.get), sorted(test, key=order.get), notes


# --- checks -----------------------------------------------------------------------------------


def _check_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise DatasetError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise DatasetError(f"{what} {path} is not a folder")


def _check_same_classes(root: Path, train: dict, other: dict, split: str) -> None:
    only_train, only_other = sorted(set(train) - set(other)), sorted(set(other) - set(train))
    if only_train or only_other:
        parts = [
            f"only in train: {', '.join(only_train)}" if only_train else "",
            f"only in {split}: {', '.join(only_other)}" if only_other else "",
        ]
        raise DatasetError(
            f"dataset {root}: train/ and {split}/ must have the same class folders; " + "; ".join(p for p in parts if p)
        )


def _unreadable_by_split(root: Path, unreadable: list[tuple[Path, str]]) -> str:
    """``"; 12 unreadable file(s) in all: 6 in train, 6 in test"``, or "" when every file reads."""
    if not unreadable:
        return ""
    per_split = {split: sum(path.is_relative_to(root / split) for path, _ in unreadable) for split in SPLITS}
    found = ", ".join(f"{n} in {split}" for split, n in per_split.items() if n)
    return f"; {len(unreadable)} unreadable file(s) in all: {found}"


def _check_class_files(folder: Path, files: dict[str, list[Path]], unreadable: list[tuple[Path, str]],
                       in_all: str = "") -> None:  # fmt: skip
    """At least two classes, some images, and no empty class (saying when unreadable files emptied it).

    ``in_all`` is appended to that message: the unreadable files of every split, not only this folder's.
    """
    if not files:
        raise DatasetError(f"dataset {folder} has no class folders; {_LAYOUT_HINT}")
    if len(files) == 1:
        raise DatasetError(
            f"dataset {folder} has only one class {next(iter(files))!r}; a classifier needs at least two"
        )
    wanted = ", ".join(IMAGE_EXTENSIONS)
    if not any(files.values()) and not unreadable:
        raise DatasetError(f"dataset {folder} has no images at all (looked for {wanted} in its class folders)")
    empty = [name for name, images in files.items() if not images]
    if empty:
        dropped = sum(path.parent.is_relative_to(folder / name) for path, _ in unreadable for name in empty)
        why = f"; {dropped} of their files are unreadable" if dropped else f" (looked for {wanted})"
        raise DatasetError(f"dataset {folder}: class folder(s) with no images: {', '.join(empty)}{why}{in_all}")


def _held_out_notes(folder: Path, split: str, files: dict[str, list[Path]], in_all: str = "") -> list[str]:
    """A val or test split may miss classes (a note: their metrics will be empty) but not be empty."""
    if not any(files.values()):
        readable = "readable " if in_all else ""
        raise DatasetError(f"{folder} has no {readable}images; put some {split} images in its class folders{in_all}")
    empty = [name for name, images in files.items() if not images]
    return [f"no {split} images for: {', '.join(empty)}; their {split} metrics will be empty"] if empty else []


def _check_counts(counts: Mapping[str, int]) -> None:
    if not counts:
        raise ValueError("class weights need at least one class")
    empty = [name for name, n in counts.items() if n <= 0]
    if empty:
        raise ValueError(f"class weights need at least one image per class; none for: {', '.join(empty)}")


# --- summary helpers --------------------------------------------------------------------------


def _read_manifest(root: Path, notes: list[str]) -> dict | None:
    """The generator's manifest.json if present; a note instead of a failure if it is broken."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        notes.append(f"{MANIFEST} could not be read and is ignored: {e}")
        return None


def _finite_or_none(value: float) -> float | None:
    """JSON has no infinity: an undefined ratio (a class with no images) becomes None."""
    return value if math.isfinite(value) else None
