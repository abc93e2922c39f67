"""Uploaded files -> decoded RGB images, each in a child process with its own time budget.

What a file is comes from its extension checked against its first bytes (:func:`input_kind`); an
image is decoded by ``load_image_rgb``, a CSV parsed by ``read_series_csv`` and drawn by
``render_series`` (:func:`load_input`). :func:`load_batches` runs :func:`read_input` for many files
in a pool of worker processes (forkserver, so no thread of the caller is copied into them): a file
that runs past its budget has its worker killed and becomes an error for that file alone, a worker
that dies (out of memory, a crash in a decoder) likewise, and every other file is still answered.
Results come back in input order as soon as each is known, grouped with whatever later files are
already done, so the caller can batch its model forward without holding an answer back.

numpy, PIL, pandas and matplotlib only (no torch): workers start in a fraction of a second.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pebble

from backend.data.csvseries import (
    MAX_CSV_BYTES,
    SeriesCSV,
    check_csv_size,
    downsample_for_drawing,
    read_series_csv,
    require_variation,
)
from backend.data.dataset import IMAGE_EXTENSIONS
from backend.data.images import check_drawn, load_image_rgb, sniff_image_format
from backend.data.render import render_series, style_tta_styles
from backend.procs import forkserver_context

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
ACCEPTED_EXTENSIONS = IMAGE_EXTENSIONS + CSV_EXTENSIONS
FILE_TIME_BUDGET_S = 20.0  # reading + decoding (or parsing + drawing) one file; capped inputs take < 5 s
MAX_WORKERS = 4
# An image file is read whole before its header is checked; past this it is refused unread.
MAX_IMAGE_BYTES = 256 * 2**20

Source = Path | str | bytes


@dataclass(frozen=True, eq=False)
class LoadedInput:
    """One file decoded: ``image`` and ``notes``, or ``error`` (one line) when it failed."""

    filename: str
    image: np.ndarray | None = None  # (H, W, 3) uint8
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    # a CSV's series drawn again in other plotting styles ("style TTA"); empty for an image file
    views: tuple[np.ndarray, ...] = ()
    # why any class for this file would be a guess (a plot image whose axes hold no series line,
    # ``backend.data.digitize.line_problem``); the predictor flags the answer uncertain with it
    doubts: tuple[str, ...] = ()


def input_kind(filename: str, data: bytes) -> str:
    """``"image"`` or ``"csv"``, from the extension checked against the content.

    The extension says what the user meant and the first bytes say what the file is; when they
    disagree (a text file named .png, a PNG named .csv) the file is refused with both facts.
    """
    name, suffix = Path(filename).name, Path(filename).suffix.lower()
    if not data:
        raise ValueError(f"{name} is empty")
    found = sniff_image_format(data)
    if suffix in IMAGE_EXTENSIONS:
        if found:
            return "image"
        if _looks_like_text(data):
            raise ValueError(f"{name} is not an image: its content is text")
        raise ValueError(f"{name} is not a PNG, JPEG, BMP or WebP image (unrecognised content)")
    if suffix in CSV_EXTENSIONS:
        if found:
            raise ValueError(f"{name} is a {found} image, not a CSV series; rename it to .{found.lower()}")
        return "csv"
    raise ValueError(
        f"{name}: unsupported file type {suffix or '(no extension)'}; accepted: {', '.join(ACCEPTED_EXTENSIONS)}"
    )


def display_name(source: Source, filename: str | None) -> str:
    """The name a file goes by; bytes need one, since the extension says what they are."""
    if filename:
        return filename
    if isinstance(source, bytes | bytearray | memoryview):
        raise ValueError(
            "a filename is needed with the file's bytes: its extension says whether it is an image or a CSV"
        )
    return Path(source).name


def load_input(
    source: Source, *, filename: str | None = None, column: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """Decode one image or CSV file into ``(image (H, W, 3) uint8, notes)``.

    A CSV is parsed by ``read_series_csv`` (``column`` picks a column; default the first numeric
    one) and drawn with the team style by ``render_series``, as the generator drew the training
    plots (index x-axis, like the generator, so a generated CSV gives its PNG's pixels). A series
    longer than ``MAX_DRAW_POINTS`` is drawn from its per-stretch minima and maxima. ``notes`` say
    what was done to the series on the way (NaNs interpolated, thinned for drawing...).
    """
    image, notes, _ = load_input_views(source, filename=filename, column=column)
    return image, notes


def load_input_views(
    source: Source, *, filename: str | None = None, column: str | None = None, style_views: int = 0
) -> tuple[np.ndarray, list[str], tuple[np.ndarray, ...]]:
    """:func:`load_input`, plus, for a CSV, its series drawn in ``style_views`` other plotting
    styles (``backend.data.render.style_tta_styles``: fixed, seeded "varied" styles), whose
    predictions tell whether the model's answer depends on the look of the plot. An image file
    has no other renderings: ``()``."""
    loaded = read_input(source, filename=filename, column=column, style_views=style_views)
    return loaded.image, loaded.notes, loaded.views


def read_input(
    source: Source, *, filename: str | None = None, column: str | None = None, style_views: int = 0
) -> LoadedInput:
    """:func:`load_input_views` as one :class:`LoadedInput`, with its ``doubts``: for a plot image
    whose axes hold no series line (empty axes, only a grid or a straight rule), the reason any
    class given to it is a guess. A CSV is drawn here, so it always has a line."""
    if style_views < 0:
        raise ValueError(f"style_views must be 0 or more, got {style_views}")
    name = display_name(source, filename)
    upload = read_upload(name, _read_bytes(source, name), column=column)
    if isinstance(upload, np.ndarray):
        from backend.data.digitize import line_problem  # OpenCV: only when an image is read

        problem = line_problem(upload)
        return LoadedInput(name, image=upload, doubts=(f"{problem}: any class is a guess",) if problem else ())
    notes = [f"series from column {upload.column!r}", *upload.notes]
    values = downsample_for_drawing(upload.values)
    views = tuple(render_series(values, style=style) for style in style_tta_styles(style_views))
    return LoadedInput(name, image=render_series(values), notes=notes, views=views)


def read_upload(name: str, data: bytes, *, column: str | None = None) -> np.ndarray | SeriesCSV:
    """A file's bytes as every prediction path reads them: an image decoded to (H, W, 3) uint8 RGB,
    or a CSV parsed into a :class:`SeriesCSV` (``column`` picks its column). Either is refused, with
    its message, when it holds nothing to classify: an image with nothing drawn on it
    (:func:`check_drawn`), a constant series (:func:`require_variation`). Training reads its files
    without these two checks."""
    if input_kind(name, data) == "image":
        image = load_image_rgb(data, name=Path(name).name)
        check_drawn(image, Path(name).name)
        return image
    return require_variation(read_series_csv(data, column=column))


def load_batches(
    files: Iterable[tuple[str, Source]],
    *,
    column: str | None = None,
    time_budget: float = FILE_TIME_BUDGET_S,
    max_batch: int = 32,
    workers: int | None = None,
    style_views: int = 0,
) -> Iterator[list[LoadedInput]]:
    """:func:`load_input` for each ``(filename, bytes or path)`` in worker processes, in input order.

    Each list yielded starts with the next file in order as soon as it is done and adds the files
    after it that are done too (at most ``max_batch``). A file that takes longer than
    ``time_budget`` seconds has its worker killed and comes back with ``error`` set. A CSV also
    comes back with ``style_views`` renderings in other styles (``views``), drawn within its budget.
    """
    if time_budget <= 0:
        raise ValueError(f"the per-file time budget must be positive, got {time_budget}")
    if max_batch < 1:
        raise ValueError(f"batch_size must be at least 1, got {max_batch}")
    files = list(files)
    if not files:
        return
    count = workers or min(len(files), os.cpu_count() or 1, MAX_WORKERS)
    pool = pebble.ProcessPool(max_workers=count, context=_worker_context())
    try:
        futures = [
            (name, pool.schedule(_load_task, args=(source, name, column, style_views), timeout=time_budget))
            for name, source in files
        ]
        position = 0
        while position < len(futures):
            batch = [_result(*futures[position], time_budget)]
            position += 1
            while position < len(futures) and len(batch) < max_batch and futures[position][1].done():
                batch.append(_result(*futures[position], time_budget))
                position += 1
            yield batch
    finally:
        pool.stop()  # also when the caller stops early: no worker outlives the call
        pool.join()


def _load_task(source: Source, filename: str, column: str | None, style_views: int = 0) -> LoadedInput:
    """What a worker runs: :func:`read_input`, with any failure that is not the file's fault
    (an exception from deep in a library) turned into a one-line ValueError that pickles."""
    try:
        return read_input(source, filename=filename, column=column, style_views=style_views)
    except (ValueError, OSError):
        raise
    except MemoryError as e:
        raise ValueError(f"{Path(filename).name} needs more memory than is available to decode") from e
    except Exception as e:  # noqa: BLE001 - a decoder's own bug must not read as a crash of the product
        raise ValueError(f"{Path(filename).name} cannot be read ({type(e).__name__}: {e})") from e


def _result(name: str, future: concurrent.futures.Future, time_budget: float) -> LoadedInput:
    try:
        loaded = future.result()
    except TimeoutError:
        return LoadedInput(
            name, error=f"{Path(name).name} took longer than the {time_budget:g} s allowed per file; stopped"
        )
    except concurrent.futures.BrokenExecutor as e:  # workers could not start (see _worker_context)
        return LoadedInput(name, error=f"{Path(name).name} was not read: the reader processes did not start ({e})")
    except pebble.ProcessExpired as e:
        return LoadedInput(
            name, error=f"{Path(name).name} stopped its reader (exit code {e.exitcode}); is it too large?"
        )
    except (ValueError, OSError) as e:
        return LoadedInput(name, error=one_line(e))
    return replace(loaded, filename=name)


def one_line(error: BaseException, limit: int = 400) -> str:
    """An exception as one line of bounded length: torch's and PIL's messages can run to pages."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _worker_context() -> multiprocessing.context.BaseContext:
    """forkserver with this module preloaded (``backend.procs.forkserver_context``): workers fork
    from a clean single-threaded server that has numpy, PIL, pandas and matplotlib imported, never
    from a threaded dashboard. As with any non-fork start method, each worker imports the caller's
    main script again unless it was started as a module's ``__main__`` (``python -m streamlit run``,
    ``python -m backend``), and a script that predicts needs the ``if __name__ == "__main__":`` guard."""
    return forkserver_context()


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start > len(head) - 4  # only a multi-byte character cut at the end
    return True


def _read_bytes(source: Source, filename: str) -> bytes:
    """The file's bytes, reading no further than its kind's cap (/dev/zero cannot flood memory)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    limit = MAX_CSV_BYTES if Path(filename).suffix.lower() in CSV_EXTENSIONS else MAX_IMAGE_BYTES
    try:
        with Path(source).open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as e:
        raise ValueError(f"cannot read {Path(filename).name}: {e.strerror or e}") from e
    if limit == MAX_CSV_BYTES:
        check_csv_size(len(data))
    elif len(data) > limit:
        raise ValueError(f"{Path(filename).name} is larger than the {limit // 2**20} MiB limit for an image file")
    return data
