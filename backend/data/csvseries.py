"""Parse an uploaded CSV into one float series (plus notes on what was done to it).

Accepted: a ``timestamp,value`` file (what the generator writes), a single numeric column with or
without a header, or several columns with one chosen (default: the first numeric column that is not
a timestamp or a row index). The delimiter (comma, semicolon, tab, whitespace), the header and a
decimal comma are detected. Missing or infinite values are interpolated or dropped, and a very long
series is kept whole for the caller but thinned for drawing; each of these adds a note the Predict
page shows. Every refusal is a :class:`CSVError` that says what to fix.

numpy + pandas only (no torch).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from backend.errors import WorkbenchError

MIN_POINTS = 10  # fewer finite values than this cannot be drawn as a meaningful series
MAX_DRAW_POINTS = 20_000  # longer series are drawn from min/max per bucket (spikes survive)
NUMERIC_SHARE = 0.9  # a column is numeric when this share of its non-blank cells are numbers
TIME_NAMES = {"time", "timestamp", "date", "datetime", "ts", "epoch", "t", "x"}  # any word of a column name
_SAMPLE_LINES = 50  # lines looked at to detect the delimiter and header
_DATE_SAMPLE = 200  # cells looked at to decide whether a column holds numbers or dates
# Bounds checked on the raw file before any per-cell work, so parsing time grows with the file and
# no faster: a 32 MiB file of a million ``timestamp,value`` rows parses in about 1.5 s.
MAX_CSV_BYTES = 32 * 2**20  # larger files are refused (read no further than this)
MAX_ROWS = 5_000_000  # lines
MAX_LINE_CHARS = 10_000  # a longer line is not a CSV row (one huge cell, or no newlines at all)
_MAX_DATE_CHARS = 64  # a longer cell is never a date, and is not handed to a date parser
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+(?:[eE][-+]?\d+)?\s*$")


class CSVError(WorkbenchError, ValueError):
    """A CSV that cannot be turned into a series; the message says why and what to change."""


@dataclass
class SeriesCSV:
    values: np.ndarray  # float64, 1-D, all finite, at least MIN_POINTS long
    timestamps: np.ndarray | None  # datetime64 or numeric, same length as values; None without a time column
    column: str  # the column the values came from
    notes: list[str] = field(default_factory=list)  # what was detected or changed, for the user

    def for_drawing(self, max_points: int = MAX_DRAW_POINTS) -> tuple[np.ndarray, np.ndarray | None]:
        """``(values, timestamps)`` to hand to the renderer: whole up to ``max_points``, else the
        min/max of each stretch (:func:`drawing_indices`), timestamps thinned the same way."""
        keep = drawing_indices(self.values, max_points)
        return self.values[keep], None if self.timestamps is None else self.timestamps[keep]


def read_series_csv(source: Path | bytes | str, column: str | None = None) -> SeriesCSV:
    """Parse ``source`` (a path, the file's bytes, or CSV text containing a newline) into a series.

    ``column`` names the column to use (case-insensitive); by default the first numeric column that
    is not a timestamp or a row index.
    """
    text = _checked_shape(_decode(_read_source(source)))
    lines = _first_lines(text, _SAMPLE_LINES)
    if not lines:
        raise CSVError("CSV is empty: it has no rows; expect e.g. 'timestamp,value' lines or one number per line")
    sep = _detect_delimiter(lines)
    first = _split(lines[0], sep)
    has_header = _is_header(first)
    names, notes = _column_names(first, has_header)
    data_cells = [cell for line in lines[int(has_header) :] for cell in _split(line, sep)]
    decimal = "," if sep != "," and any(_DECIMAL_COMMA.match(cell) for cell in data_cells) else "."
    table = _parse_table(text.lstrip(), sep, names, skip=int(has_header), decimal=decimal)
    if table.empty:
        raise CSVError(f"CSV has a header ({', '.join(names)}) but no data rows")
    numeric = _numeric_columns(table)
    time_column = _time_column(table, numeric)
    name = _choose_column(table, numeric, time_column, column, notes)
    values = numeric[name].to_numpy(dtype=np.float64)
    timestamps = _timestamps(table, numeric, time_column, name, notes)
    values, timestamps = _sort_by_time(values, timestamps, time_column, notes)
    values, timestamps = _clean_non_finite(values, timestamps, name, notes)
    if len(values) > MAX_DRAW_POINTS:
        notes.append(
            f"{len(values):,} points: all are kept, but the plot is drawn from {MAX_DRAW_POINTS:,} "
            "(the minimum and maximum of each stretch, so spikes stay visible)"
        )
    return SeriesCSV(values=values, timestamps=timestamps, column=name, notes=notes)


def drawing_indices(values: np.ndarray, max_points: int = MAX_DRAW_POINTS) -> np.ndarray:
    """Sorted indices of at most ``max_points`` values that keep each bucket's minimum and maximum.

    The series is cut into ``max_points // 2`` equal stretches; the positions of each stretch's
    lowest and highest value are kept, so a one-sample spike is still drawn.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    width = -(-n // (max_points // 2))  # ceil: samples per bucket
    buckets = -(-n // width)
    padded = np.pad(np.asarray(values, dtype=np.float64), (0, buckets * width - n), mode="edge").reshape(buckets, width)
    starts = np.arange(buckets) * width
    lows = np.minimum(starts + padded.argmin(axis=1), n - 1)
    highs = np.minimum(starts + padded.argmax(axis=1), n - 1)
    return np.unique(np.concatenate([lows, highs]))


def downsample_for_drawing(values: np.ndarray, max_points: int = MAX_DRAW_POINTS) -> np.ndarray:
    """``values`` thinned to at most ``max_points`` by min/max per bucket (see :func:`drawing_indices`)."""
    values = np.asarray(values)
    return values[drawing_indices(values, max_points)]


# --- reading ---------------------------------------------------------------------------------


def _read_source(source: Path | bytes | str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, str) and "\n" in source:
        data = source.encode("utf-8")
    else:
        path = Path(source)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_CSV_BYTES + 1)  # never more: /dev/zero or a huge file stops here
        except FileNotFoundError as e:
            raise CSVError(f"CSV file {path} does not exist") from e
        except OSError as e:
            raise CSVError(f"CSV file {path} cannot be read ({e.strerror or e})") from e
    check_csv_size(len(data))
    return data


def check_csv_size(n_bytes: int) -> None:
    """Refuse a file over :data:`MAX_CSV_BYTES` (``n_bytes`` may be just past the cap: reading stops there)."""
    if n_bytes > MAX_CSV_BYTES:
        raise CSVError(
            f"CSV is larger than the {MAX_CSV_BYTES // 2**20} MiB limit; keep the rows of one series "
            f"(at most {MAX_ROWS:,}) and save it again"
        )


def _checked_shape(text: str) -> str:
    """``text`` with any line ending as ``\n``, refused if it has too many rows or an absurd line.

    Checked on the whole text with linear scans before a single cell is parsed: one 5 MB line
    once sat for minutes in a date parser whose time grows with the square of the cell's length.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)  # numpy scans bytes: no string per line
    breaks = np.flatnonzero(raw == ord("\n"))
    rows = len(breaks) + (not text.endswith("\n"))
    if rows > MAX_ROWS:
        raise CSVError(f"CSV has {rows:,} lines, over the {MAX_ROWS:,}-row limit; split or thin the series")
    starts, ends = np.concatenate(([0], breaks + 1)), np.concatenate((breaks, [len(raw)]))
    for line in np.flatnonzero(ends - starts > MAX_LINE_CHARS):  # over in bytes; count the characters
        length = len(raw[starts[line] : ends[line]].tobytes().decode("utf-8"))
        if length > MAX_LINE_CHARS:
            raise CSVError(
                f"CSV line {line + 1:,} is {length:,} characters long, over the {MAX_LINE_CHARS:,} limit for one "
                "row; expect one row per line, e.g. 'timestamp,value' (is the file missing its line breaks?)"
            )
    return text


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, or Windows-1252; binary files are refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"PK\x03\x04"):
        raise CSVError("file is a zip archive (an Excel .xlsx?), not text; export the sheet as CSV")
    if b"\x00" in data[:4096]:
        raise CSVError("file is not text (it contains binary data; is it an image or a spreadsheet?)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CSVError("file is not readable text: it is neither UTF-8 nor Windows-1252; save it as UTF-8 CSV")


def _first_lines(text: str, count: int) -> list[str]:
    """The first ``count`` non-blank lines, without splitting a file of millions of lines."""
    lines = (line.rstrip("\r\n") for line in io.StringIO(text))
    return list(itertools.islice((line for line in lines if line.strip()), count))


def _detect_delimiter(lines: list[str]) -> str | None:
    """Tab, semicolon or comma if most lines split into the same number (> 1) of fields by it,
    else whitespace if that does, else None (a single column).

    Semicolon is tried before comma so ``1,5;2,3`` (decimal commas) splits on the semicolon.
    """
    for sep in ("\t", ";", ","):
        if _consistent_fields([line.count(sep) + 1 for line in lines]):
            return sep
    if _consistent_fields([len(line.split()) for line in lines]):
        return r"\s+"
    return None


def _consistent_fields(counts: list[int]) -> bool:
    """More than one field, and the usual field count on at least 3 lines in 4 (a ragged line is
    then reported by the parser rather than turning the file into one text column)."""
    fields, seen = Counter(counts).most_common(1)[0]
    return fields > 1 and seen >= 0.75 * len(counts)


def _split(line: str, sep: str | None) -> list[str]:
    """One line's cells, stripped, as the CSV reader will see them (quotes honoured)."""
    if sep is None:
        return [line.strip()]
    if sep == r"\s+":
        return line.split()
    return [cell.strip() for cell in next(csv.reader([line], delimiter=sep))]


def _is_header(cells: list[str]) -> bool:
    """A first line is a header when one of its cells is text: neither a number nor a date."""
    return any(cell and not _is_number(cell) and not _is_date(cell) for cell in cells)


def _column_names(first: list[str], has_header: bool) -> tuple[list[str], list[str]]:
    """Names from the header (blank or repeated ones made unique), else ``value`` / ``column_<i>``."""
    if has_header:
        named = [cell or f"column_{i + 1}" for i, cell in enumerate(first)]
        seen: Counter = Counter()
        unique = []
        for name in named:
            seen[name] += 1
            unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
        return unique, []
    names = ["value"] if len(first) == 1 else [f"column_{i + 1}" for i in range(len(first))]
    return names, ["no header row found; columns named " + ", ".join(names)]


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", ".") if _DECIMAL_COMMA.match(cell) else cell)
    except ValueError:
        return False
    return True


def _is_date(cell: str) -> bool:
    return not pd.isna(_dates(pd.Series([cell])).iloc[0])


def _parse_table(text: str, sep: str | None, names: list[str], *, skip: int, decimal: str) -> pd.DataFrame:
    """The data rows with pandas' C parser (numbers typed, blanks and NA spellings as NaN).

    Every row must have the header's number of fields; a ragged file is a clear error.
    """
    try:
        table = pd.read_csv(
            io.StringIO(text),
            sep=sep or "\x1f",  # no delimiter: one column (the unit separator never occurs in a CSV)
            header=None,
            skiprows=skip,
            decimal=decimal,
            skipinitialspace=True,
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=names)
    except (pd.errors.ParserError, ValueError) as e:
        raise CSVError(f"CSV rows do not line up ({e}); every row needs the same number of fields") from e
    if table.shape[1] != len(names):
        raise CSVError(
            f"CSV rows have {table.shape[1]} fields but the first line has {len(names)} "
            f"({', '.join(names)}); every row needs the same number of fields"
        )
    return table.set_axis(names, axis=1)


def _numeric_columns(table: pd.DataFrame) -> dict[str, pd.Series]:
    """Columns where at least NUMERIC_SHARE of the non-blank cells are numbers, as float Series.

    Non-numeric cells in such a column (``n/a``, ``-``, ``error``) become NaN, handled later with a note.
    """
    numeric = {}
    for name in table.columns:
        cells = table[name]
        if pd.api.types.is_bool_dtype(cells) or not _mostly_numbers(cells.head(_DATE_SAMPLE)):
            continue  # decided on a sample first: converting a million date strings costs seconds
        values = pd.to_numeric(cells, errors="coerce")
        if _mostly_numbers(cells, values):
            numeric[name] = values.astype(np.float64)
    return numeric


def _mostly_numbers(cells: pd.Series, values: pd.Series | None = None) -> bool:
    """At least NUMERIC_SHARE of the non-blank cells are numbers (``values``: cells already converted)."""
    values = pd.to_numeric(cells, errors="coerce") if values is None else values
    filled = int(cells.notna().sum())
    return bool(filled) and values.notna().sum() >= NUMERIC_SHARE * filled


def _time_column(table: pd.DataFrame, numeric: dict[str, pd.Series]) -> str | None:
    """The first column named like a time (timestamp, date, ...) or, failing that, full of dates."""
    for name in table.columns:
        if TIME_NAMES.intersection(re.split(r"[^a-z0-9]+", name.lower())):
            return name
    for name in table.columns:
        if name not in numeric and _dates(table[name].head(_DATE_SAMPLE)).notna().mean() >= NUMERIC_SHARE:
            return name
    return None


def _dates(cells: pd.Series) -> pd.Series:
    """Cells parsed as dates (NaT where not), time zones converted to naive UTC.

    The format guessed from the first cell parses a million ISO stamps in about 0.5 s; parsing each
    cell on its own (``format="mixed"``) is ten times slower, so it is only the fallback.
    """
    cells = cells.where(cells.astype(str).str.len() <= _MAX_DATE_CHARS)  # NaT, without the parser
    filled = cells.dropna()
    guessed = guess_datetime_format(str(filled.iloc[0])) if len(filled) else None
    parsed = pd.to_datetime(cells, errors="coerce", utc=True, format=guessed or "mixed")
    if guessed and parsed.isna().sum() > cells.isna().sum():
        parsed = pd.to_datetime(cells, errors="coerce", utc=True, format="mixed")
    return parsed.dt.tz_localize(None)


def _is_row_index(series: pd.Series) -> bool:
    """0, 1, 2, ... or 1, 2, 3, ...: what ``DataFrame.to_csv`` writes as its first column."""
    values = series.to_numpy()
    return bool(len(values) > 1 and np.isfinite(values).all() and values[0] in (0, 1) and (np.diff(values) == 1).all())


def _choose_column(
    table: pd.DataFrame, numeric: dict[str, pd.Series], time_column: str | None, column: str | None, notes: list[str]
) -> str:
    """The asked-for column (it must be numeric), else the first numeric non-time, non-index one."""
    columns = ", ".join(table.columns)
    if column is not None:
        matches = [name for name in table.columns if name.strip().lower() == column.strip().lower()]
        if not matches:
            raise CSVError(f"CSV has no column {column!r}; columns found: {columns}")
        if table[matches[0]].isna().all():
            raise _no_finite_numbers(matches[0])
        if matches[0] not in numeric:
            example = table[matches[0]].dropna().iloc[0]
            raise CSVError(
                f"column {matches[0]!r} is not numeric (e.g. {str(example)!r}); numeric columns: "
                f"{', '.join(numeric) or 'none'}"
            )
        return matches[0]
    candidates = [name for name in numeric if name != time_column]
    if not candidates:
        blank = [name for name in table.columns if name != time_column and table[name].isna().all()]
        if blank:
            raise _no_finite_numbers(blank[0])
        besides = f" besides the time column {time_column!r}" if time_column in numeric else ""
        raise CSVError(f"CSV has no numeric column{besides}; columns found: {columns}")
    indexes = [name for name in candidates[:-1] if _is_row_index(numeric[name])]
    flat = [name for name in candidates[:-1] if name not in indexes and _is_constant(numeric[name])]
    skipped = indexes + flat
    chosen = next(name for name in candidates if name not in skipped)
    if indexes:
        notes.append(f"skipped {', '.join(repr(n) for n in indexes)}: it looks like a row index (0, 1, 2, ...)")
    if flat:
        notes.append(f"skipped {', '.join(repr(n) for n in flat)}: one value in every row (an id or a setting)")
    if len(candidates) - len(skipped) > 1:
        others = ", ".join(name for name in candidates if name not in skipped and name != chosen)
        notes.append(f"used column {chosen!r}, the first numeric one; also numeric: {others}")
    return chosen


def require_variation(series: SeriesCSV) -> SeriesCSV:
    """``series``, refused for prediction when it is one value repeated: a flat line holds none of the
    anomaly types, so any class named for it would be a guess. (Training reads such a file as it is.)"""
    if _is_constant(series.values):
        raise CSVError(
            f"column {series.column!r} is constant: all {len(series.values):,} values are "
            f"{series.values[0]:g}, and a flat line shows no anomaly type to classify"
        )
    return series


def _is_constant(values: pd.Series | np.ndarray) -> bool:
    """Every finite value the same."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return len(finite) > 0 and finite.min() == finite.max()


def _no_finite_numbers(column: str) -> CSVError:
    return CSVError(f"column {column!r} has no finite numbers: every cell is empty, NaN or NA")


def _timestamps(
    table: pd.DataFrame, numeric: dict[str, pd.Series], time_column: str | None, chosen: str, notes: list[str]
) -> np.ndarray | None:
    """Dates as datetime64, or numbers (epoch seconds, x values) as float; None when unusable."""
    if time_column is None or time_column == chosen:
        return None
    stamps = _dates(table[time_column]) if time_column not in numeric else numeric[time_column]
    if stamps.isna().any():
        notes.append(
            f"time column {time_column!r} has {int(stamps.isna().sum())} unreadable entries; the row order is used instead"
        )
        return None
    return stamps.to_numpy()


def _sort_by_time(
    values: np.ndarray, timestamps: np.ndarray | None, time_column: str | None, notes: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows in time order (a stable sort), with a note when they were not."""
    if timestamps is None:
        return values, None
    order = np.argsort(timestamps, kind="stable")
    if (order == np.arange(len(order))).all():
        return values, timestamps
    notes.append(f"rows were not in time order; sorted by {time_column!r}")
    return values[order], timestamps[order]


def _clean_non_finite(
    values: np.ndarray, timestamps: np.ndarray | None, column: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Interpolate missing/infinite values inside the series linearly; drop those at either end."""
    finite = np.isfinite(values)
    if finite.sum() < MIN_POINTS:
        raise CSVError(
            f"column {column!r} has only {int(finite.sum())} finite values out of {len(values)} rows; "
            f"at least {MIN_POINTS} are needed to draw a series"
        )
    if finite.all():
        return values, timestamps
    first, last = np.flatnonzero(finite)[[0, -1]]
    n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    kept = slice(first, last + 1)
    values, inside = values[kept].copy(), finite[kept]
    missing = np.flatnonzero(~inside)
    values[missing] = np.interp(missing, np.flatnonzero(inside), values[inside])
    dropped = int((~finite).sum()) - len(missing)
    notes.append(
        f"{n_nan + n_inf} missing or infinite values ({n_nan} empty/NaN/text, {n_inf} infinite): "
        f"{len(missing)} inside the series linearly interpolated, {dropped} at the ends dropped"
    )
    return values, timestamps[kept] if timestamps is not None else None
