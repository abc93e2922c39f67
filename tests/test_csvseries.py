"""read_series_csv on real CSV text in every shape the Predict page accepts, and every refusal."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from backend.data.csvseries import (
    MAX_CSV_BYTES,
    MAX_DRAW_POINTS,
    MAX_LINE_CHARS,
    MAX_ROWS,
    CSVError,
    downsample_for_drawing,
    drawing_indices,
    read_series_csv,
    require_variation,
)

VALUES = np.round(np.sin(np.arange(30) / 3.0) * 10 + 50, 4)


def lines(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def test_timestamp_value_file_like_the_generator_writes(tmp_path):
    stamps = [f"2024-01-01 00:{i:02d}:00" for i in range(30)]
    path = tmp_path / "series.csv"
    path.write_bytes(lines("timestamp,value", *(f"{t},{v}" for t, v in zip(stamps, VALUES, strict=True))))
    series = read_series_csv(path)
    assert series.column == "value" and series.notes == []
    np.testing.assert_array_equal(series.values, VALUES)
    assert series.values.dtype == np.float64
    assert np.issubdtype(series.timestamps.dtype, np.datetime64)
    assert str(series.timestamps[1].astype("datetime64[s]")) == "2024-01-01T00:01:00"
    assert read_series_csv(str(path)).column == "value"  # a path given as str


def test_numeric_time_column_is_not_taken_as_the_value():
    series = read_series_csv(lines("time_s,level", *(f"{i * 0.5},{v}" for i, v in enumerate(VALUES))))
    assert series.column == "level"
    np.testing.assert_array_equal(series.timestamps, np.arange(30) * 0.5)


def test_a_lone_time_column_is_not_a_series():
    with pytest.raises(CSVError, match="no numeric column besides the time column 't'; columns found: t"):
        read_series_csv(lines("t", *map(str, range(20))))


def test_single_column_without_header():
    series = read_series_csv(lines(*map(str, VALUES)))
    assert series.column == "value" and series.timestamps is None
    np.testing.assert_array_equal(series.values, VALUES)
    assert any("no header row found" in note for note in series.notes)


def test_single_column_with_header_and_text_input():
    text = "Temperature\n" + "\n".join(map(str, VALUES))
    series = read_series_csv(text)  # CSV text passed as str (it contains a newline)
    assert series.column == "Temperature" and series.notes == []
    np.testing.assert_array_equal(series.values, VALUES)


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("t;value", "{i};{v}"),
        ("t\tvalue", "{i}\t{v}"),
        ("t value", "{i}   {v}"),
        ("t, value", "{i}, {v}"),
    ],
)
def test_delimiters_are_detected(header, row):
    series = read_series_csv(lines(header, *(row.format(i=i, v=v) for i, v in enumerate(VALUES))))
    assert series.column == "value"
    np.testing.assert_array_equal(series.values, VALUES)


def test_semicolon_file_with_decimal_commas():
    rows = [f"{i};{str(v).replace('.', ',')}" for i, v in enumerate(VALUES)]
    series = read_series_csv(lines("idx;reading", *rows))
    assert series.column == "reading"
    np.testing.assert_array_equal(series.values, VALUES)


def test_several_columns_default_to_the_first_numeric_one_and_a_column_can_be_chosen():
    rows = [f"2024-02-{i + 1:02d},Paris,{v},{100 - v}" for i, v in enumerate(VALUES[:28])]
    data = lines("date,city,temp,Humidity", *rows)
    series = read_series_csv(data)
    assert series.column == "temp"
    np.testing.assert_array_equal(series.values, VALUES[:28])
    assert any("also numeric: Humidity" in note for note in series.notes)
    chosen = read_series_csv(data, column="humidity")  # case-insensitive
    assert chosen.column == "Humidity"
    np.testing.assert_allclose(chosen.values, 100 - VALUES[:28])


def test_pandas_index_column_is_skipped():
    rows = [f"{i},{v}" for i, v in enumerate(VALUES)]
    series = read_series_csv(lines(",value", *rows))  # what DataFrame.to_csv() writes
    assert series.column == "value"
    assert any("looks like a row index" in note for note in series.notes)
    headerless = read_series_csv(lines(*rows))
    assert headerless.column == "column_2"
    np.testing.assert_array_equal(headerless.values, VALUES)


def test_a_constant_column_is_skipped_for_a_varying_one_and_a_constant_series_is_refused_for_prediction():
    rows = [f"7,{v},0.5" for v in VALUES]
    series = read_series_csv(lines("sensor,value,gain", *rows))  # an id column before the values
    assert series.column == "value"
    np.testing.assert_array_equal(series.values, VALUES)
    assert "skipped 'sensor': one value in every row (an id or a setting)" in series.notes
    assert require_variation(series) is series
    flat = read_series_csv(lines("value", *["4.25"] * 30))  # training reads it as it is...
    np.testing.assert_array_equal(flat.values, np.full(30, 4.25))
    with pytest.raises(CSVError, match=r"^column 'value' is constant: all 30 values are 4.25, and a flat line"):
        require_variation(flat)  # ...prediction refuses it
    asked = read_series_csv(lines("sensor,value,gain", *rows), column="gain")  # asked for: no skipping
    with pytest.raises(CSVError, match="column 'gain' is constant: all 30 values are 0.5"):
        require_variation(asked)


def test_unsorted_rows_are_sorted_by_time():
    rows = [f"2024-01-{i + 1:02d},{v}" for i, v in enumerate(VALUES)]
    series = read_series_csv(lines("date,value", *reversed(rows)))
    np.testing.assert_array_equal(series.values, VALUES)
    assert any("sorted by 'date'" in note for note in series.notes)


def test_missing_and_infinite_values_are_interpolated_inside_and_dropped_at_the_ends():
    cells = [str(v) for v in VALUES]
    cells[0] = ""  # leading gap: dropped
    cells[5] = "nan"
    cells[6] = "inf"
    cells[12] = "n/a"
    cells[-1] = "-inf"  # trailing: dropped
    series = read_series_csv(lines("t,value", *(f"{i},{cell}" for i, cell in enumerate(cells))))
    assert len(series.values) == 28 and np.isfinite(series.values).all()
    np.testing.assert_allclose(series.values[4:6], VALUES[4] + (VALUES[7] - VALUES[4]) * np.array([1, 2]) / 3)
    np.testing.assert_allclose(series.values[11], (VALUES[11] + VALUES[13]) / 2)
    (note,) = [n for n in series.notes if "missing or infinite" in n]
    assert "5 missing or infinite values" in note
    assert "3 inside the series linearly interpolated, 2 at the ends dropped" in note


def test_a_few_junk_cells_do_not_make_a_column_non_numeric():
    cells = [str(v) for v in VALUES]
    cells[10] = "error"
    series = read_series_csv(lines("value", *cells))
    assert len(series.values) == 30
    assert any("1 missing or infinite values" in note for note in series.notes)


def test_long_series_are_kept_whole_and_drawn_from_min_max_buckets():
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(size=60_000), 3)
    values[31_337] = 40.0  # a one-sample spike
    series = read_series_csv(lines("t,value", *(f"{i * 2},{v}" for i, v in enumerate(values))))
    np.testing.assert_array_equal(series.values, values)
    assert any("60,000 points" in note and "drawn from 20,000" in note for note in series.notes)
    drawn, stamps = series.for_drawing()
    assert len(drawn) <= MAX_DRAW_POINTS and drawn.max() == 40.0 and drawn.min() == values.min()
    assert stamps[np.argmax(drawn)] == 31_337 * 2  # timestamps thinned with the values


def test_downsample_for_drawing():
    short = np.arange(50.0)
    np.testing.assert_array_equal(downsample_for_drawing(short, 100), short)
    values = np.sin(np.arange(10_001) / 50.0)
    values[1234], values[8000] = 5.0, -5.0
    indices = drawing_indices(values, 200)
    assert len(indices) <= 200 and (np.diff(indices) > 0).all()
    drawn = downsample_for_drawing(values, 200)
    assert 5.0 in drawn and -5.0 in drawn
    np.testing.assert_array_equal(drawn, values[indices])
    with pytest.raises(ValueError, match="at least 2"):
        drawing_indices(values, 1)


def test_encodings():
    text = "température\n" + "\n".join(map(str, VALUES))
    assert read_series_csv(text.encode("cp1252")).column == "température"
    assert read_series_csv(text.encode("utf-8-sig")).column == "température"
    assert read_series_csv(text.encode("utf-16")).column == "température"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"CSV is empty"),
        (b"\n  \n\n", r"CSV is empty"),
        (b"timestamp,value\n", r"CSV has a header \(timestamp, value\) but no data rows"),
        (lines("date,city", *(f"2024-01-{i + 1:02d},Paris" for i in range(12))),
         r"CSV has no numeric column; columns found: date, city"),
        (lines("value", *map(str, VALUES[:7])), r"column 'value' has only 7 finite values out of 7 rows; at least 10"),
        (lines("value", *map(str, VALUES[:9]), "nan", "inf"), r"only 9 finite values out of 11 rows"),
        (lines("a,b", "1,2", "3,4", "5,6,7"), r"CSV rows do not line up"),
        (b"PK\x03\x04rest-of-zip", r"zip archive \(an Excel \.xlsx\?\), not text; export the sheet as CSV"),
        (b"\x81\x8d\x8f\x90\x9d" * 10, r"neither UTF-8 nor Windows-1252"),
    ],
)  # fmt: skip
def test_bad_files_get_clear_errors(data, message):
    with pytest.raises(CSVError, match=message):
        read_series_csv(data)


def test_an_image_is_not_a_csv():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    with pytest.raises(CSVError, match="not text"):
        read_series_csv(buffer.getvalue())


def test_chosen_column_must_exist_and_be_numeric():
    data = lines("date,city,temp", *(f"2024-01-{i + 1:02d},Paris,{v}" for i, v in enumerate(VALUES[:20])))
    with pytest.raises(CSVError, match=r"CSV has no column 'pressure'; columns found: date, city, temp"):
        read_series_csv(data, column="pressure")
    with pytest.raises(CSVError, match=r"column 'city' is not numeric \(e.g. 'Paris'\); numeric columns: temp"):
        read_series_csv(data, column="city")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CSVError, match="does not exist"):
        read_series_csv(tmp_path / "nope.csv")


# --- bounds checked before any per-cell work (issue 12) -------------------------------------------


def test_a_file_past_the_size_cap_is_refused_without_reading_it_all(tmp_path):
    endless = tmp_path / "endless.csv"
    endless.symlink_to("/dev/zero")
    with pytest.raises(CSVError, match=r"^CSV is larger than the 32 MiB limit"):
        read_series_csv(endless)
    assert MAX_CSV_BYTES == 32 * 2**20


def test_a_line_without_breaks_is_refused_in_linear_time():
    # The measured hang: one 5 MB line sat in a date parser whose time grew with the square of its length.
    start = time.perf_counter()
    with pytest.raises(CSVError, match=r"^CSV line 1 is 5,000,000 characters long, over the 10,000 limit"):
        read_series_csv(b"1," * 2_500_000)
    with pytest.raises(CSVError, match=r"^CSV line 3 is 10,001 characters long"):
        read_series_csv(lines("value", "1", "é" * 10_001, "2"))  # counted in characters, not bytes
    read_series_csv(lines("value", *["1"] * 20, "2" * (MAX_LINE_CHARS - 1)))  # just under: a (junk) cell
    assert time.perf_counter() - start < 5


def test_too_many_rows_are_refused_before_parsing():
    with pytest.raises(CSVError, match=rf"^CSV has {MAX_ROWS + 1:,} lines, over the {MAX_ROWS:,}-row limit"):
        read_series_csv(b"1\n" * (MAX_ROWS + 1))


def test_long_cells_never_reach_the_date_parser():
    rows = [f"{'2024-01-01' * 900},{i % 7}" for i in range(300)]  # 9,000-character "dates"
    start = time.perf_counter()
    series = read_series_csv(lines("time,value", *rows))
    assert time.perf_counter() - start < 5
    assert len(series.values) == 300 and series.timestamps is None
    assert "time column 'time' has 300 unreadable entries; the row order is used instead" in series.notes


@pytest.mark.parametrize(
    "data",
    [
        lines("timestamp,value", *[f"2024-01-{d:02d},nan" for d in range(1, 21)]),
        lines("value", *["NA"] * 5, *[""] * 5, *["nan"] * 10),
    ],
)
def test_an_all_nan_value_column_says_so(data):
    with pytest.raises(CSVError, match=r"^column 'value' has no finite numbers: every cell is empty, NaN or NA$"):
        read_series_csv(data)
    with pytest.raises(CSVError, match=r"^column 'value' has no finite numbers"):
        read_series_csv(data, column="value")


def test_old_mac_line_endings():
    series = read_series_csv(b"value\r" + b"".join(f"{i % 5}\r".encode() for i in range(40)))
    assert len(series.values) == 40
