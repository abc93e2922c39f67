"""Grad-CAM on real runs of each family, the plot area the renderer records, and the anomaly share."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from backend.config import REPO_ROOT
from backend.data.images import load_image_rgb
from backend.data.render import PlotArea, render_plot
from backend.data.transforms import to_tensor_batch
from backend.explain import (
    ExplainError,
    anomaly_attention_share,
    anomaly_columns,
    anomaly_spans,
    attention_report,
    gradcam,
    overlay,
    uniform_attention_share,
)
from backend.predict import Predictor
from tests.fixtures.cli import run_cli


def _manifest(dataset) -> list[dict]:
    return json.loads((dataset / "manifest.json").read_text())["samples"]


def _line_columns(image: np.ndarray, area: PlotArea) -> np.ndarray:
    """Mask of the blue line's pixels inside the plot area (axes, ticks and text are black or grey)."""
    pixels = image.astype(int)
    line = pixels[..., 2] - pixels[..., 0] > 20
    line[:, : int(area.left) + 1] = False
    line[:, int(area.right) :] = False
    return line


@pytest.mark.parametrize("size", [None, (96, 72), (64, 64)])
def test_plot_area_maps_a_sample_index_to_its_pixel_column(size):
    values = np.zeros(200)
    values[137] = 10.0  # one spike: the highest point of the line
    image, area = render_plot(values, size=size)
    assert 0 < area.left < area.first_x < area.last_x < area.right <= image.shape[1]
    assert 0 < area.top < area.bottom <= image.shape[0]
    line = _line_columns(image, area)
    top_row = np.flatnonzero(line.any(axis=1)).min()
    spike_columns = np.flatnonzero(line[top_row])
    assert abs(spike_columns.mean() - area.x(137)) <= 1.0


def test_the_manifest_records_the_plot_area_where_point_anomalies_are_drawn(tiny_dataset):
    samples = _manifest(tiny_dataset)
    assert all("plot_area" in r for r in samples)
    singles = [r for r in samples if r["class"] == "point_anomaly" and r["subkind"].startswith("single")]
    assert singles
    for record in singles:  # one spike, far outside the noise: the line's extreme in its direction
        image = load_image_rgb(tiny_dataset / record["png"])
        area = PlotArea(**record["plot_area"])
        assert area.length == record["params"]["length"]
        line = _line_columns(image, area)
        rows = np.flatnonzero(line.any(axis=1))
        row = rows.min() if record["params"]["directions"][0] > 0 else rows.max()
        (index,) = record["params"]["location"]["indices"]
        assert abs(np.flatnonzero(line[row]).mean() - area.x(index)) <= 1.0


def test_anomaly_columns_cover_the_window_scaled_to_the_map():
    area = PlotArea(left=10, top=5, right=90, bottom=60, first_x=14.0, last_x=86.0, length=73)  # 1 px per sample
    record = {"image_size": [100, 64], "plot_area": area.to_dict(), "params": {"location": {"start": 20, "end": 30}}}
    assert anomaly_columns(record, 100) == [(33, 44)]
    assert anomaly_columns(record, 50) == [(16, 22)]  # the map is half as wide
    record["params"]["location"] = {"indices": [0, 72]}
    assert anomaly_columns(record, 100) == [(13, 15), (85, 87)]
    assert anomaly_spans({"segments": [[1, 4], [9, 12]]}) == [(1, 4), (9, 12)]
    with pytest.raises(ExplainError, match="regenerate"):
        anomaly_columns({"png": "old.png", "image_size": [100, 64], "params": record["params"]}, 100)


def test_the_share_is_higher_for_a_map_on_the_window_than_for_a_random_one(tiny_dataset):
    record = next(r for r in _manifest(tiny_dataset) if r["class"] == "collective_anomaly" and r["split"] == "test")
    width = 32
    columns = anomaly_columns(record, width)
    (start, stop) = columns[0]
    centre = (start + stop - 1) / 2
    planted = np.tile(np.exp(-(((np.arange(width) - centre) / max(1.0, (stop - start) / 2)) ** 2)), (width, 1))
    random = np.random.default_rng(0).random((width, width))
    baseline = uniform_attention_share(width, columns)
    assert baseline == pytest.approx((stop - start) / width)
    assert anomaly_attention_share(planted, columns) > 2 * anomaly_attention_share(random, columns)
    assert anomaly_attention_share(random, columns) == pytest.approx(baseline, abs=0.1)
    assert anomaly_attention_share(np.ones((8, 8)), (2, 4)) == pytest.approx(0.25)
    assert np.isnan(anomaly_attention_share(np.zeros((8, 8)), (2, 4)))


@pytest.mark.parametrize("model", ["visual_cnn", "vae_classifier", "resnet50"])
def test_gradcam_maps_have_the_image_size_and_show_where(completed_runs, tiny_dataset, model):
    predictor = Predictor.from_run(completed_runs[model], device="cpu", precision="fp32")
    paths = sorted((tiny_dataset / "test").glob("*/*.png"))[::3]  # one plot per class
    images = np.stack([predictor.prepare(load_image_rgb(p)) for p in paths])  # cropped as the run trained
    batch = to_tensor_batch(images, predictor.mean, predictor.std)
    maps = gradcam(predictor.model, batch)
    assert maps.shape == (len(paths), 32, 32) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    spread = maps.max(axis=(1, 2)) - maps.min(axis=(1, 2))
    assert (spread == 1.0).mean() >= 0.5, spread  # most maps point somewhere (an all-zero map has no evidence)
    assert np.array_equal(gradcam(predictor.model, batch[:2], target=[0, 1]).shape, (2, 32, 32))

    painted = overlay(load_image_rgb(paths[0]), maps[0])
    assert painted.shape == (72, 96, 3) and painted.dtype == np.uint8
    assert not np.array_equal(painted, load_image_rgb(paths[0]))


def test_attention_report_has_a_row_per_class_with_its_baseline(completed_runs, tiny_dataset):
    predictor = Predictor.from_run(completed_runs["visual_cnn"], device="cpu", precision="fp32")
    table = attention_report(predictor, tiny_dataset, per_class=2)
    assert list(table.columns) == ["class", "n", "empty", "share", "baseline", "lift"]
    assert table["class"].tolist() == predictor.class_names and (table["n"] == 2).all()
    measured = table[table["empty"] < table["n"]]  # a class whose every map is empty has no share
    assert len(measured) >= 5 and measured["share"].between(0, 1).all()
    assert table["baseline"].between(0, 1).all()
    whole = table.set_index("class").loc["deterministic_trend", "baseline"]  # the window is the whole series
    assert whole > 0.7
    assert table.set_index("class").loc["point_anomaly", "baseline"] < 0.2
    with pytest.raises(ExplainError, match="manifest.json"):
        attention_report(predictor, tiny_dataset / "test")


def test_explain_cli_writes_an_overlay_per_file(completed_runs, tiny_dataset, tmp_path):
    """One real ``python -m backend explain`` child (exit status, a JSON line per file, the overlays on
    disk); the attention table and the refusal go through the same CLI ``main`` in this process."""
    png = sorted((tiny_dataset / "test").glob("*/*.png"))[0]
    csv = tiny_dataset / "csv" / "test" / png.parent.name / f"{png.stem}.csv"
    bad = tmp_path / "fake.png"
    bad.write_text("not an image")
    out = tmp_path / "cams"
    explain = ["explain", "--run", str(completed_runs["vae_classifier"])]

    done = subprocess.run(
        [sys.executable, "-m", "backend", *explain, str(png), str(csv), str(bad), "--out", str(out), "--device", "cpu",
         "--json"], cwd=REPO_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["error"] is None for r in rows] == [True, True, False]
    assert load_image_rgb(out / f"{png.name}.gradcam.png").shape == (72, 96, 3)
    assert load_image_rgb(out / f"{csv.name}.gradcam.png").shape == (600, 800, 3)  # the CSV drawn in team style

    table = run_cli(*explain, "--attention", str(tiny_dataset), "--per-class", "1", "--device", "cpu", "--json")
    assert table.returncode == 0, table.stderr
    rows = json.loads(table.stdout)
    assert len(rows) == 9 and {"class", "n", "empty", "share", "baseline", "lift"} <= set(rows[0])
    missing_out = run_cli(*explain, str(png))
    assert missing_out.returncode == 2 and "--out DIR" in missing_out.stderr


def test_the_predict_page_paints_grad_cam_over_each_file(completed_runs, tiny_dataset, monkeypatch):
    from tests.test_pages import open_page

    monkeypatch.setenv("DATA_DIR", str(tiny_dataset.parent))
    at = open_page("predict")
    at.selectbox(key="predict_run").set_value(completed_runs["resnet50"]).run()
    png = sorted((tiny_dataset / "test").glob("*/*.png"))[0]
    csv = tiny_dataset / "csv" / "test" / png.parent.name / f"{png.stem}.csv"
    at.file_uploader(key="predict_files").set_value(
        [("plot.png", png.read_bytes(), "image/png"), ("series.csv", csv.read_bytes(), "text/csv")]
    ).run()

    def overlays():
        return [c for image in at.get("image") for c in image.captions if "evidence for" in c]

    assert overlays() == []
    at.toggle(key="predict_gradcam").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [c.split(":")[0] for c in overlays()] == ["plot.png", "series.csv"]  # one overlay per file
