"""Cached reads for the pages: every query a page makes goes through here.

Two caches, two jobs (Streamlit docs): ``st.cache_data`` for query results, copied per caller so a
page may change what it gets; ``st.cache_resource`` for things built once and shared by every
session (the predictor, the device probe). Every store query takes the store URL as an argument,
so the cache is keyed by database: pointing ``RUNS_DB_URL`` elsewhere never serves another store's
rows. TTLs are short where runs change under us (a live panel must stay live) and longer where the
answer only changes when files change (those are also keyed by the file's modification time).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import streamlit as st

from backend import config, lineage, runs, store
from backend.data import dataset
from backend.evaluation.compare import compare_runs
from backend.runs import artifacts

LIVE_TTL = 2  # seconds: run lists and histories, which training processes change
RESULT_TTL = 30  # seconds: per-class metrics and matrices, written once at the end of a run
FILE_TTL = 300  # seconds: file-derived data, also keyed by modification time


def store_url() -> str:
    """The run store the dashboard reads, as configured now (``RUNS_DB_URL``)."""
    return config.runs_db_url()


def data_root() -> Path:
    """Folder of datasets (``DATA_DIR``)."""
    return config.data_dir()


def mtime(path: Path | str) -> float:
    """Modification time of ``path``, 0 when it does not exist: a cache key that changes with the file."""
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


# --- runs ----------------------------------------------------------------------------------------


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def all_runs(url: str) -> pd.DataFrame:
    """Every run, newest first, after marking runs whose process died as ``lost``."""
    return runs.list_runs(url=url)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def status_counts(url: str) -> dict[str, int]:
    return store.count_runs_by_status(url=url)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def run_record(run_id: int, url: str) -> store.RunRecord:
    """One run (``RunNotFound`` propagates: the page says the run is gone)."""
    return store.get_run(int(run_id), url=url)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def run_history(run_id: int, url: str) -> pd.DataFrame:
    return store.run_history(int(run_id), url=url)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def runs_history(run_ids: tuple[int, ...], url: str) -> pd.DataFrame:
    return store.runs_history(list(run_ids), url=url)


@st.cache_data(ttl=RESULT_TTL, show_spinner=False)
def class_metrics(run_id: int, evaluation_id: int | None, url: str) -> pd.DataFrame:
    return store.class_metrics(int(run_id), evaluation_id, url=url)


@st.cache_data(ttl=RESULT_TTL, show_spinner=False)
def confusion(run_id: int, evaluation_id: int | None, url: str):
    return store.confusion(int(run_id), evaluation_id, url=url)


@st.cache_data(ttl=RESULT_TTL, show_spinner=False)
def evaluations(run_id: int, url: str) -> pd.DataFrame:
    return store.list_evaluations(int(run_id), url=url)


@st.cache_data(ttl=RESULT_TTL, show_spinner=False)
def predictions(run_id: int, evaluation_id: int | None, url: str) -> pd.DataFrame:
    """Stored per-item predictions of a run's test split or one evaluation (empty for old runs)."""
    return store.predictions(int(run_id), evaluation_id, url=url)


@st.cache_data(ttl=RESULT_TTL, show_spinner="Comparing runs...")
def comparison(run_a: int, run_b: int, url: str) -> dict:
    """``compare_runs`` of two runs (paired bootstrap and McNemar on their shared test items)."""
    return compare_runs(int(run_a), int(run_b), url=url)


def clear_run_caches() -> None:
    """Forget cached run queries after the page changed a run (launch, cancel, delete)."""
    for cached in (all_runs, status_counts, run_record, run_history, runs_history):
        cached.clear()


# --- run artifacts -------------------------------------------------------------------------------


def log_tail(run_id: int, lines: int = 15, max_bytes: int = 16_384) -> str:
    """The last ``lines`` lines of a run's ``log.txt`` (read from the end; logs can grow large)."""
    path = artifacts.log_path(run_id)
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def test_predictions_path(run_id: int) -> Path:
    return artifacts.predictions_path(run_id)


@st.cache_data(ttl=FILE_TTL, show_spinner=False)
def test_predictions(run_id: int, stamp: float) -> pd.DataFrame | None:
    """A run's ``test_predictions.csv`` (file, true, predicted, confidence, prob_<class>), or None.

    ``stamp`` is the file's modification time, so a rewritten file is read again.
    """
    path = test_predictions_path(run_id)
    if not stamp or not path.is_file():
        return None
    return pd.read_csv(path)


def checkpoint_path(record: store.RunRecord) -> Path | None:
    """The run's best checkpoint (the path its row records, as ``Predictor.from_run`` loads it) if it
    is on disk."""
    if record.checkpoint_path and Path(record.checkpoint_path).is_file():
        return Path(record.checkpoint_path)
    return None


@st.cache_resource(max_entries=4, show_spinner="Loading the model...")
def predictor(run_id: int, checkpoint: str, stamp: float):
    """A loaded ``Predictor`` (or, for a series model, ``SeriesPredictor``) for a run, shared by every
    session (it is read-only after loading).

    Keyed by the checkpoint's path and modification time as well as the run id, so a newer
    ``best.pt`` (or another store's run with the same id) is loaded afresh.
    """
    from backend.predict_series import open_run

    return open_run(int(run_id))


# --- datasets ------------------------------------------------------------------------------------


@st.cache_data(ttl=10, show_spinner=False)
def datasets(data_dir: str) -> list[str]:
    """Dataset folders under ``data_dir``, as strings."""
    return [str(p) for p in dataset.list_datasets(Path(data_dir))]


def dataset_stamp(root: str) -> float:
    """A cache key that changes when a dataset is regenerated (its manifest or folder is rewritten)."""
    return max(mtime(Path(root) / "manifest.json"), mtime(root))


@st.cache_data(ttl=FILE_TTL, show_spinner="Reading the dataset...")
def dataset_summary(root: str, stamp: float) -> dict:
    """``dataset_summary`` of a folder, without the manifest's per-sample records (thousands of rows
    the page never shows)."""
    summary = dataset.dataset_summary(Path(root))
    if summary.get("manifest"):
        summary["manifest"] = {k: v for k, v in summary["manifest"].items() if k != "samples"}
    return summary


@st.cache_data(ttl=FILE_TTL, show_spinner=False)
def dataset_samples(root: str, stamp: float, per_class: int) -> dict[str, list[str]]:
    """Up to ``per_class`` training image paths per class, for the gallery."""
    info = dataset.scan_dataset(Path(root))
    samples: dict[str, list[str]] = {name: [] for name in info.classes}
    for sample in info.train + info.test:
        paths = samples[info.classes[sample.label]]
        if len(paths) < per_class:
            paths.append(str(sample.path))
    return samples


# --- machine -------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def machine_gpus() -> list[str]:
    """Names of this machine's NVIDIA GPUs (empty on a CPU-only machine), probed once.

    Asked of ``nvidia-smi`` rather than torch, so the Home page never pays for importing torch.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


# --- lineage -------------------------------------------------------------------------------------


@st.cache_data(ttl=FILE_TTL, show_spinner=False)
def _resolve_files(root: str, paths: tuple[str, ...], hashes: tuple[str, ...], stamp: float) -> list[str | None]:
    return [None if p is None else str(p) for p in lineage.resolve_files(root, paths, hashes)]


def resolve_files(root: str, paths: tuple[str, ...], hashes: tuple[str, ...]) -> list[str | None]:
    """Stored relative paths under ``root``, None where the file is gone or its bytes changed since it
    was predicted (``backend.lineage.resolve_files``); cached per state of the folder, as it reads each file."""
    return _resolve_files(root, paths, hashes, dataset_stamp(root))


@st.cache_data(ttl=FILE_TTL, show_spinner=False)
def _dataset_check(root: str, fingerprint: str | None, stamp: float) -> lineage.DatasetCheck:
    return lineage.check_dataset(root, fingerprint)


def dataset_check(root: str, fingerprint: str | None) -> lineage.DatasetCheck:
    """Whether ``root`` is still the dataset a run trained on (``backend.lineage.check_dataset``),
    cached per state of the folder."""
    return _dataset_check(root, fingerprint, dataset_stamp(root))
