"""Lineage: which state of a dataset a run (or an evaluation) saw, and whether it is still there.

A run stores its dataset's *fingerprint* when it starts training: the sha256 of the dataset's
``manifest.json`` for generated datasets (the manifest lists every sample with its parameters, and is
rewritten whenever the folder is regenerated), or, for a folder without one, a sha256 over the
relative names and sizes of its image files. Per-file predictions store paths relative to the
dataset root (``predictions.path``), so a moved dataset still resolves; a dataset *replaced* under
the same name is caught by the fingerprint, and per file by the stored ``item_hash`` (sha256 of the
file's bytes), instead of showing other images behind an old run's cells.

No torch and no Streamlit here: the dashboard and the CLI both call it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from backend.data.dataset import IMAGE_EXTENSIONS, MANIFEST, file_sha256

FINGERPRINT_KINDS = ("manifest", "files")


def dataset_fingerprint(root: Path | str) -> str | None:
    """``manifest:<sha256 of manifest.json>`` or ``files:<sha256 over relative image names and sizes>``;
    None when ``root`` is not a folder (a deleted dataset has no fingerprint)."""
    root = Path(root)
    if not root.is_dir():
        return None
    manifest = root / MANIFEST
    if manifest.is_file():
        return "manifest:" + hashlib.sha256(manifest.read_bytes()).hexdigest()[:48]
    digest = hashlib.sha256()
    for path in sorted(_image_files(root)):
        relative = path.relative_to(root).as_posix()
        digest.update(f"{relative}\t{path.stat().st_size}\n".encode())
    return "files:" + digest.hexdigest()[:48]


def _image_files(root: Path) -> Iterable[Path]:
    for path in root.rglob("*"):
        if (
            path.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in path.relative_to(root).parts)
            and path.is_file()
        ):
            yield path


@dataclass(frozen=True)
class DatasetCheck:
    """Whether a run's dataset is the one it trained on: ``state`` is ``same``, ``changed``, ``missing``
    (the folder is gone) or ``unknown`` (the run stored no fingerprint: trained before lineage)."""

    state: str
    message: str

    @property
    def usable(self) -> bool:
        """Its stored files may be shown: the dataset is the same one, or nothing says otherwise."""
        return self.state in {"same", "unknown"}


def check_dataset(root: Path | str, stored_fingerprint: str | None) -> DatasetCheck:
    """Compare the dataset folder now with the fingerprint a run stored when it trained."""
    root = Path(root)
    if not root.is_dir():
        return DatasetCheck("missing", f"the dataset {root} is gone, so the images behind this run cannot be shown")
    if stored_fingerprint is None:
        return DatasetCheck("unknown", "this run was trained before datasets were fingerprinted")
    now = dataset_fingerprint(root)
    if now == stored_fingerprint:
        return DatasetCheck("same", "the dataset is the one this run trained on")
    return DatasetCheck(
        "changed",
        f"the dataset {root} changed since this run trained on it (regenerated or edited), so its files are not the "
        "ones this run was tested on; images are not shown to avoid showing other images",
    )


def resolve_files(
    root: Path | str, relative_paths: Iterable[str], hashes: Iterable[str | None] | None = None
) -> list[Path | None]:
    """Each stored relative path under ``root``, or None where the file is gone or (when its hash is
    given) its bytes are no longer the ones that were predicted on. An absolute path stays as it is
    (``test_predictions.csv`` of old runs)."""
    root = Path(root)
    paths = [root / p for p in relative_paths]
    if hashes is None:
        return [p if p.is_file() else None for p in paths]
    return [
        p if p.is_file() and (not isinstance(h, str) or file_sha256(p) == h) else None
        for p, h in zip(paths, hashes, strict=True)
    ]


def datasets_differ(a: tuple[str, str | None], b: tuple[str, str | None]) -> str | None:
    """Why two runs' datasets differ (``(dataset, fingerprint)`` each), or None when they look the same.

    Different folders are different datasets; the same folder with different stored fingerprints was
    changed between the two runs. A missing fingerprint (an older run) compares by folder only.
    """
    (path_a, fp_a), (path_b, fp_b) = a, b
    if Path(path_a).resolve() != Path(path_b).resolve():
        if fp_a is not None and fp_a == fp_b:
            return None  # the same data in two places
        return f"the runs trained on different datasets ({Path(path_a).name} and {Path(path_b).name})"
    if fp_a is not None and fp_b is not None and fp_a != fp_b:
        return f"the dataset {Path(path_a).name} changed between the two runs (different fingerprints)"
    return None
