"""Make a synthetic dataset: series -> CSV + plot PNG -> ``manifest.json``, in parallel and reproducibly.

Layout written under ``out``::

    train/<class>/<id>.png   test/<class>/<id>.png          the images (ImageFolder layout)
    csv/train/<class>/<id>.csv   csv/test/<class>/<id>.csv  the series: ``timestamp,value``
    manifest.json                                         options, counts, and every sample's params

Each sample draws from its own RNG, derived with ``numpy.random.SeedSequence`` from
(seed, split, class, index), so the worker that makes it and the order it finishes in never change
a byte: the same seed gives the same files. Train and test never share a series (their seeds
differ).

Replacing: an existing folder at ``out`` is replaced only when this product wrote it - its manifest
carries :data:`GENERATOR` (or is the previous release's manifest) and the folder holds nothing but the
files that manifest lists - otherwise :class:`ReplaceRefused` says why, before and again just before
the swap. The dataset is built in a hidden sibling folder and swapped into place at the end
(atomically where the filesystem can exchange two names), so a reader never sees half a dataset and
an interrupted run leaves the old dataset where it was.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import glob
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from backend.data.render import STYLES, check_size, encode_png, render_plot
from backend.data.series import CLASSES, check_series_options, generate_series
from backend.procs import forkserver_context, pid_exists
from backend.registry import Registry

SPLITS = ("train", "test", "val")  # val last: adding it left train/test sample seeds (and bytes) unchanged
MANIFEST_NAME = "manifest.json"
GENERATOR = "anomaly-workbench"  # the manifest's signature: a folder carrying it was written by generate
FORMAT_VERSION = 2  # 2: generator signature "anomaly-workbench"; 1: the first release's manifest
# The first release's manifest (format 1): its generator text and exact keys mark its datasets as ours too.
_RELEASE_1 = {"generator": "anomaly-workbench synthetic series (backend.data.generate)",
              "keys": {"format_version", "generator", "classes", "seed", "options", "counts", "samples"}}
FREQUENCIES = {"1min": 60, "5min": 300, "15min": 900, "1h": 3600, "1D": 86400}  # CSV sampling, seconds
MIN_TASKS_PER_WORKER = 16  # below this a worker process costs more to start than it saves

IMBALANCES: Registry = Registry("imbalance mode")


# ---------------------------------------------------------------------------------------------
# Class counts: balanced, long-tail, custom
# ---------------------------------------------------------------------------------------------


@IMBALANCES.register("balanced")
def _balanced(argument: str, classes: Sequence[str], train: int, test: int) -> dict[str, dict[str, int]]:
    """Every class gets train_per_class and test_per_class."""
    if argument:
        raise ValueError(f"imbalance 'balanced' takes no argument; got 'balanced:{argument}'")
    return {"train": dict.fromkeys(classes, train), "test": dict.fromkeys(classes, test)}


@IMBALANCES.register("longtail")
def _longtail(argument: str, classes: Sequence[str], train: int, test: int) -> dict[str, dict[str, int]]:
    """``longtail:RATIO``: counts decay geometrically in class order from N down to N/RATIO (at least 1).

    Applied to train (N = train_per_class) and test (N = test_per_class) alike, so both splits share
    the imbalance, as a held-out split drawn from the same population would.
    """
    try:
        ratio = float(argument)
    except ValueError:
        raise ValueError(f"longtail needs a number, as in longtail:10; got 'longtail:{argument}'") from None
    if not np.isfinite(ratio) or ratio < 1:
        raise ValueError(f"longtail ratio must be a number >= 1 (largest class / smallest); got {argument}")
    steps = max(1, len(classes) - 1)

    def decay(top: int) -> dict[str, int]:
        return {c: max(1, round(top * ratio ** (-k / steps))) for k, c in enumerate(classes)}

    return {"train": decay(train), "test": decay(test)}


@IMBALANCES.register("counts")
def _counts(argument: str, classes: Sequence[str], train: int, test: int) -> dict[str, dict[str, int]]:
    """``counts:a=N,b=M``: train counts per named class; test counts in the same proportion (>= 1).

    Classes not named keep train_per_class and test_per_class.
    """
    named: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in argument.split(","))):
        name, _, number = item.partition("=")
        name = name.strip()
        if name not in classes:
            raise ValueError(f"counts names class {name!r}, which is not being generated; "
                             f"classes: {', '.join(classes)}")
        if name in named:
            raise ValueError(f"counts names class {name!r} twice")
        try:
            named[name] = int(number)
        except ValueError:
            raise ValueError(f"counts needs name=N with a whole number N, as in counts:mean_shift=50; "
                             f"got {item!r}") from None
        if named[name] < 1:
            raise ValueError(f"count for {name} must be >= 1 (leave a class out with --classes); got {named[name]}")
    if not named:
        raise ValueError("counts needs at least one name=N, as in counts:mean_shift=50,volatility=10")
    train_counts = {c: named.get(c, train) for c in classes}
    return {"train": train_counts,
            "test": {c: max(1, round(test * n / train)) for c, n in train_counts.items()}}


def plan_counts(classes: Sequence[str], train_per_class: int, test_per_class: int,
                imbalance: str = "balanced", val_per_class: int = 0) -> dict[str, dict[str, int]]:
    """Samples per split and class for an imbalance spec: ``{"train": {class: n}, "test": {...}}``,
    plus ``"val"`` when ``val_per_class`` > 0 (shaped like test: the same imbalance, its own size)."""
    for name, value, least in (("train_per_class", train_per_class, 1), ("test_per_class", test_per_class, 1),
                               ("val_per_class", val_per_class, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}; got {value!r}")
    mode, _, argument = str(imbalance).partition(":")
    plan = IMBALANCES.get(mode.strip())
    counts = plan(argument.strip(), list(classes), int(train_per_class), int(test_per_class))
    if val_per_class:
        counts["val"] = plan(argument.strip(), list(classes), int(train_per_class), int(val_per_class))["test"]
    return counts


# ---------------------------------------------------------------------------------------------
# One sample (runs in a worker process)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Job:
    """Options shared by every sample of one dataset (sent once per chunk to the workers)."""

    root: str  # the staging folder the files go to
    seed: int
    length: int | None
    difficulty: float
    style: str
    size: tuple[int, int] | None
    subkinds: Mapping[str, tuple[str, ...]]


def _sample_seed(seed: int, split: str, class_name: str, index: int) -> np.random.SeedSequence:
    """The seed of one sample: independent of which worker makes it, distinct across splits."""
    return np.random.SeedSequence([seed, SPLITS.index(split), CLASSES.index(class_name), index])


def _timestamps(rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict]:
    """Evenly spaced timestamps from a random start (2010-2024) at a random frequency."""
    freq = str(rng.choice(list(FREQUENCIES)))
    start = np.datetime64("2010-01-01T00:00:00") + np.timedelta64(int(rng.integers(0, 15 * 365 * 24)), "h")
    stamps = start + np.arange(n) * np.timedelta64(FREQUENCIES[freq], "s")
    return stamps, {"start": str(start), "freq": freq}


def _write_csv(path: Path, stamps: np.ndarray, values: np.ndarray) -> None:
    """``timestamp,value`` with ISO timestamps and repr floats: reading back gives the same floats."""
    lines = map("{},{!r}".format, np.datetime_as_string(stamps, unit="s").tolist(), values.tolist())
    path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")


def _make_sample(job: _Job, task: tuple[str, str, int]) -> dict:
    """Generate, render and write one sample; return its manifest record."""
    split, class_name, index = task
    series_seed, time_seed, style_seed = _sample_seed(job.seed, split, class_name, index).spawn(3)
    series = generate_series(class_name, np.random.default_rng(series_seed), length=job.length,
                             difficulty=job.difficulty, subkinds=job.subkinds.get(class_name))
    stamps, time_params = _timestamps(np.random.default_rng(time_seed), len(series.values))
    style = STYLES.get(job.style)(np.random.default_rng(style_seed))
    image, area = render_plot(series.values, timestamps=stamps, style=style, size=job.size)

    sample_id = f"{split}-{class_name}-{index:05d}"
    png = Path(split, class_name, f"{sample_id}.png")
    csv = Path("csv", split, class_name, f"{sample_id}.csv")
    (Path(job.root) / png).write_bytes(encode_png(image))
    _write_csv(Path(job.root) / csv, stamps, series.values)
    record = {"id": sample_id, "split": split, "class": class_name, "index": index, "subkind": series.subkind,
              "params": {**series.params, "timestamps": time_params},
              "png": png.as_posix(), "csv": csv.as_posix(), "image_size": [image.shape[1], image.shape[0]],
              "plot_area": area.to_dict()}
    if job.style != "team":
        record["style"] = dataclasses.asdict(style)
    return record


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------


def _check_classes(classes: Sequence[str] | None) -> list[str]:
    if classes is None:
        return list(CLASSES)
    chosen = sorted(set(classes))
    unknown = [c for c in chosen if c not in CLASSES]
    if unknown:
        raise ValueError(f"unknown class(es) {', '.join(unknown)}; choose from: {', '.join(CLASSES)}")
    if len(chosen) < 2:
        raise ValueError(f"a dataset needs at least 2 classes; got {', '.join(chosen) or 'none'}")
    return chosen


def _check_subkinds(subkinds: Mapping[str, Sequence[str]] | None, classes: Sequence[str],
                    length: int | None, difficulty: float) -> dict[str, tuple[str, ...]]:
    """Validate length, difficulty and the per-class sub-kind restriction (ValueError otherwise)."""
    subkinds = dict(subkinds or {})
    extra = sorted(set(subkinds) - set(classes))
    if extra:
        raise ValueError(f"sub-kinds given for class(es) not being generated: {', '.join(extra)}")
    return {c: check_series_options(c, length, difficulty, subkinds.get(c)) for c in classes}


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0; got {seed!r}")
    return int(seed)


class ReplaceRefused(ValueError):
    """A folder at ``out`` that generate will not replace; the message says why and what to do."""


def _is_generated_manifest(manifest: object) -> bool:
    """True when ``manifest`` (parsed manifest.json) was written by this product's generate."""
    if not isinstance(manifest, dict):
        return False
    if manifest.get("generator") == GENERATOR:
        return isinstance(manifest.get("format_version"), int)
    return (manifest.get("generator") == _RELEASE_1["generator"] and manifest.get("format_version") == 1
            and set(manifest) == _RELEASE_1["keys"])


def _written_paths(manifest: dict) -> set[str] | None:
    """Every file path (relative, POSIX) the manifest says generate wrote; None if its samples are malformed."""
    paths = {MANIFEST_NAME}
    samples = manifest.get("samples")
    if not isinstance(samples, list):
        return None
    for sample in samples:
        if not isinstance(sample, dict) or not all(isinstance(sample.get(k), str) for k in ("png", "csv")):
            return None
        paths.update((sample["png"], sample["csv"]))
    return paths


def _foreign_entries(out: Path, written: set[str]) -> list[str]:
    """Files and folders under ``out`` that are not in ``written`` or on the way to one (folders end in /)."""
    folders = {parent.as_posix() for path in written for parent in Path(path).parents} - {"."}
    foreign = []
    for here, dirs, files in os.walk(out):
        base = Path(here).relative_to(out)
        kept = []
        for name in sorted(dirs):
            path = (base / name).as_posix()
            if path in folders and not (Path(here) / name).is_symlink():
                kept.append(name)
            else:
                foreign.append(f"{path}/")  # not walked into: one entry for the whole folder
        dirs[:] = kept
        foreign += [(base / name).as_posix() for name in sorted(files) if (base / name).as_posix() not in written]
    return foreign


def _check_replaceable(out) -> None:
    """Raise :class:`ReplaceRefused` unless ``out`` is absent, empty, or a dataset generate wrote, untouched.

    A generated dataset may have lost files (a user deleted some images) but holds nothing else: no
    file or folder its manifest does not list is ever deleted.
    """
    out = Path(out)
    if out.is_symlink():
        raise ReplaceRefused(f"{out} is a symbolic link; give the folder it points to, or a new folder")
    if not out.exists():
        return
    if not out.is_dir():
        raise ReplaceRefused(f"{out} is a file; the output must be a folder")
    if not any(out.iterdir()):
        return
    manifest_path = out / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ReplaceRefused(f"{out} is not empty and holds no {MANIFEST_NAME}, so generate did not write it and "
                             "will not replace it; choose a new or empty folder")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        manifest = None
    written = _written_paths(manifest) if _is_generated_manifest(manifest) else None
    if written is None:
        raise ReplaceRefused(f"{out}/{MANIFEST_NAME} was not written by {GENERATOR} generate (no "
                             f'"generator": "{GENERATOR}" signature), so the folder will not be replaced; '
                             "choose a new or empty folder")
    foreign = _foreign_entries(out, written)
    if foreign:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ReplaceRefused(f"{out} is a generated dataset but also holds {len(foreign)} item(s) generate did not "
                             f"write ({listed}), so it will not be replaced; move them out of it first, "
                             "or generate into a new folder")


def _worker_count(workers: int | None, tasks: int) -> int:
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1; got {workers!r}")
    return max(1, min(int(workers), tasks // MIN_TASKS_PER_WORKER))


def _make_chunk(job: _Job, tasks: list[tuple[str, str, int]]) -> list[dict]:
    return [_make_sample(job, task) for task in tasks]


def _run(job: _Job, tasks: list[tuple[str, str, int]], workers: int,
         progress: Callable[[int, int], None] | None) -> list[dict]:
    """Make every sample, in this process or a pool, calling ``progress(done, total)`` as they finish."""
    records: list[dict] = []

    def collect(chunk: list[dict]) -> None:
        records.extend(chunk)
        if progress is not None:
            progress(len(records), len(tasks))

    if workers == 1:
        for task in tasks:
            collect([_make_sample(job, task)])
        return records
    # forkserver: workers start from a clean process, never a fork of a threaded one (Streamlit, torch).
    context = forkserver_context()
    size = max(1, min(16, len(tasks) // (workers * 4)))
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    pool = ProcessPoolExecutor(workers, mp_context=context)
    try:
        for future in as_completed([pool.submit(_make_chunk, job, chunk) for chunk in chunks]):
            collect(future.result())
    except BrokenProcessPool as e:
        raise RuntimeError("a generator worker process died; run with workers=1 (--workers 1) "
                           "to see the error in this process") from e
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # interrupted: queued chunks are dropped, not drawn
    return records


_RENAME_EXCHANGE = 2  # renameat2 flag (Linux 3.15+): swap two names in one step


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` atomically; False where the OS or filesystem cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # not glibc >= 2.28 (macOS, musl): fall back to two renames
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"cannot swap {a} into place: {os.strerror(code)}")


def _swap_into_place(staging: Path, out: Path) -> None:
    """Put the finished dataset in ``staging`` at ``out``; any old dataset is deleted only once the new one is there.

    Where the filesystem can exchange two names (Linux), the swap is one atomic step and ``staging``
    then holds the old dataset. Elsewhere it takes two renames, and an error between them renames the
    old dataset back.
    """
    if not out.exists():
        os.replace(staging, out)
        return
    if _exchange(staging, out):
        shutil.rmtree(staging)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old)


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def _staging_folder(out: Path) -> Path:
    """The hidden sibling this process builds its dataset in: ``.<name>.partial-<pid>``."""
    return out.with_name(f"{_staging_prefix(out)}{os.getpid()}")


def _remove_stale_staging(out: Path) -> None:
    """Delete staging folders for ``out`` left by generate runs that were killed (their process is gone)."""
    prefix = _staging_prefix(out)
    for folder in out.parent.glob(f"{glob.escape(prefix)}*"):
        pid = folder.name[len(prefix):]
        if pid.isdigit() and folder.is_dir() and not folder.is_symlink() and not pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def generate_dataset(out, *, train_per_class: int, test_per_class: int, seed: int, val_per_class: int = 0,
                     classes: Sequence[str] | None = None, imbalance: str = "balanced",
                     length: int | None = None, difficulty: float = 1.0, style: str = "team",
                     size: tuple[int, int] | None = None, subkinds: Mapping[str, Sequence[str]] | None = None,
                     workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Generate a dataset of plot images and CSVs under ``out`` and return its manifest.

    ``classes`` defaults to all nine; ``imbalance`` is ``balanced``, ``longtail:RATIO`` or
    ``counts:a=N,b=M`` (see ``plan_counts``); ``length`` fixes every series' length; ``difficulty``
    divides anomaly magnitudes against the noise; ``style`` is a render style name (``team`` or
    ``varied``); ``size=(width, height)`` renders at that pixel size; ``subkinds`` restricts classes to
    some of their sub-kinds (held-out sub-kind experiments); ``workers`` defaults to all cores.
    Every bad option raises ValueError with what to change, before anything is written; an existing
    ``out`` that generate did not write, or that holds anything else, raises ``ReplaceRefused``.
    """
    out = Path(out)
    chosen = _check_classes(classes)
    counts = plan_counts(chosen, train_per_class, test_per_class, imbalance, val_per_class)
    allowed = _check_subkinds(subkinds, chosen, length, difficulty)
    STYLES.get(style)
    job_size = check_size(size)
    _check_replaceable(out)
    tasks = [(split, c, i) for split in counts for c in chosen for i in range(counts[split][c])]
    workers = _worker_count(workers, len(tasks))
    staging = _staging_folder(out)
    job = _Job(root=str(staging), seed=_check_seed(seed), length=None if length is None else int(length),
               difficulty=float(difficulty), style=style, size=job_size,
               subkinds={c: allowed[c] for c in (subkinds or {})})

    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for split in counts:
            for c in chosen:
                (staging / split / c).mkdir(parents=True)
                (staging / "csv" / split / c).mkdir(parents=True)
        records = _run(job, tasks, workers, progress)
        order = {task: k for k, task in enumerate(tasks)}
        records.sort(key=lambda r: order[(r["split"], r["class"], r["index"])])
        manifest = {
            "format_version": FORMAT_VERSION,
            "generator": GENERATOR,
            "classes": chosen,
            "seed": job.seed,
            "options": {"train_per_class": int(train_per_class), "test_per_class": int(test_per_class),
                        "imbalance": imbalance, "length": job.length, "difficulty": job.difficulty,
                        "style": style, "size": list(job_size) if job_size else None,
                        "subkinds": {c: list(s) for c, s in job.subkinds.items()} or None},
            "counts": counts,
            "samples": records,
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
        _check_replaceable(out)  # again: a file may have been put there while the plots were drawn
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest

