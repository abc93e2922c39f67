"""The series model family (``series_cnn``): preprocessing, training on the dataset's CSVs, prediction
of CSVs of any length, the image + series ensemble, and Compare pairing it with an image run.

Real parts throughout: the session's tiny generated dataset, real training runs in the session's
store, real checkpoints and CSV files, the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from backend import store
from backend.__main__ import main as cli
from backend.data.inputs import load_input
from backend.data.render import encode_png
from backend.data.transforms import TTA_MODES
from backend.evaluation.compare import compare_runs
from backend.models import create_model, model_input_kind
from backend.models.series1d import SERIES_TTA_VIEWS, resample_series, series_to_input, series_tta_views
from backend.predict import PredictError, Predictor
from backend.predict_series import EnsemblePredictor, SeriesPredictor, open_ensemble, open_run
from backend.runs.lifecycle import build_config, train_run
from backend.training.checkpoint import read_checkpoint
from backend.training.config import ConfigError

TINY = {"batch_size": 16, "workers": 0, "device": "cpu", "precision": "fp32"}


@pytest.fixture(scope="module")
def runs(tiny_dataset, completed_runs) -> dict[str, int]:
    """A series_cnn run (2 epochs) and the session's visual_cnn run (``completed_runs``: 2 epochs,
    32 px) on the same tiny dataset."""
    result = train_run(build_config({**TINY, "epochs": 2, "data": str(tiny_dataset), "model": "series_cnn"}))
    assert result.status == "completed", store.get_run(result.run_id).error
    return {"series_cnn": result.run_id, "visual_cnn": completed_runs["visual_cnn"]}


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory) -> dict[int, str]:
    """Single-column CSVs of 50, 300 and 5,000 points (a random walk with one spike)."""
    folder = tmp_path_factory.mktemp("series")
    files = {}
    for n in (50, 300, 5000):
        values = np.random.default_rng(n).standard_normal(n).cumsum()
        values[n // 2] += 40.0
        path = folder / f"walk{n}.csv"
        path.write_text("value\n" + "\n".join(map(repr, values.tolist())) + "\n")
        files[n] = str(path)
    return files


def test_preprocessing_keeps_a_spike_of_a_long_series_and_scales_robustly():
    values = np.zeros(5000)
    values[1234] = 50.0
    values += np.random.default_rng(0).normal(0, 1, 5000)
    resampled = resample_series(values, 256)
    assert resampled.shape == (3, 256)
    assert resampled[2].max() == values.max()  # the max channel keeps the one-point spike
    assert np.interp(np.linspace(0, 4999, 256), np.arange(5000), values).max() < 10  # plain interp would miss it
    x = series_to_input(values, 256)
    assert x.shape == (3, 256) and x.dtype == np.float32
    assert abs(np.median(x[0])) < 0.2 and x.max() == 20.0  # robust z-score, clipped
    short = series_to_input(np.arange(50.0) * 1e6 + 3e9, 256)  # large offset and scale: same shape of input
    np.testing.assert_allclose(short[0], short[2])  # upsampled: mean = min = max
    np.testing.assert_allclose(short, series_to_input(np.arange(50.0), 256), atol=1e-5)
    assert np.isfinite(series_to_input(np.full(30, 7.0), 64)).all()  # a constant series does not divide by 0


def test_series_cnn_is_a_series_model_and_rebuilds_from_its_kwargs():
    assert model_input_kind("series_cnn") == "series" and model_input_kind("visual_cnn") == "image"
    torch.manual_seed(0)
    model = create_model("series_cnn", num_classes=4, image_size=32, length=64, width=8).eval()
    x = torch.from_numpy(np.stack([series_to_input(np.sin(np.arange(n) / 5.0), 64) for n in (50, 300)]))
    outputs = model(x)
    assert outputs["logits"].shape == (2, 4)
    torch.testing.assert_close(model.fc(outputs["features"]), outputs["logits"])
    rebuilt = create_model("series_cnn", num_classes=4, image_size=32, **json.loads(json.dumps(model.model_kwargs)))
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x)["logits"], outputs["logits"])
    with pytest.raises(ValueError, match="length must be a whole number of at least 32"):
        create_model("series_cnn", num_classes=4, image_size=32, length=8)


def test_series_cnn_blocks_deepen_the_network_and_older_kwargs_rebuild_three_blocks():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64)
    deeper = create_model("series_cnn", num_classes=4, image_size=32, length=64, width=8, blocks=4).eval()
    assert deeper.model_kwargs["blocks"] == 4 and len(deeper.blocks) == 4
    rebuilt = create_model("series_cnn", num_classes=4, image_size=32, **json.loads(json.dumps(deeper.model_kwargs)))
    rebuilt.load_state_dict(deeper.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x)["logits"], deeper(x)["logits"])
    # A checkpoint written before ``blocks`` existed stores no such key: it must rebuild the same
    # three-block network, so its weights still load.
    older = {k: v for k, v in deeper.model_kwargs.items() if k != "blocks"}
    three = create_model("series_cnn", num_classes=4, image_size=32, **older)
    assert len(three.blocks) == 3
    with pytest.raises(RuntimeError):
        three.load_state_dict(deeper.state_dict())
    # The first unit of the fourth block reaches the last of 64 points (its field spans 72 to the
    # right); the third block's spans 36.
    probe = torch.randn(1, 3, 64, requires_grad=True)
    for model, reaches in ((three.eval(), False), (deeper, True)):
        probe.grad = None
        model.blocks(model.stem(probe))[0, :, 0].sum().backward()
        assert bool(probe.grad[0, 0, -1] != 0) is reaches
    with pytest.raises(ValueError, match="4 blocks halve 32 points to under 8"):
        create_model("series_cnn", num_classes=4, image_size=32, length=32, blocks=4)
    with pytest.raises(ValueError, match="blocks must be at most 5"):
        create_model("series_cnn", num_classes=4, image_size=32, blocks=6)


def test_training_checkpoints_the_input_kind_and_stores_predictions_keyed_like_the_image_runs(runs):
    series_run = store.get_run(runs["series_cnn"])
    checkpoint = read_checkpoint(series_run.checkpoint_path)
    assert checkpoint["input_kind"] == "series" and checkpoint["series_length"] == 256
    assert checkpoint["model_name"] == "series_cnn" and checkpoint["temperature"] > 0
    assert checkpoint["epoch"] in (1, 2) and checkpoint["uncertainty"] is not None
    series_items = store.predictions(runs["series_cnn"]).sort_values("item_hash")
    image_items = store.predictions(runs["visual_cnn"]).sort_values("item_hash")
    assert len(series_items) == 27  # 3 test plots x 9 classes, each answered from its CSV
    assert series_items["item_hash"].tolist() == image_items["item_hash"].tolist()
    result = compare_runs(runs["series_cnn"], runs["visual_cnn"])
    assert result["comparable"] is True and result["n_paired"] == 27, result["reason"]


def test_series_predictor_answers_csvs_of_any_length_with_calibrated_probabilities(runs, csv_files, tiny_dataset,
                                                                                    tmp_path):
    predictor = open_run(runs["series_cnn"], device="cpu")
    assert isinstance(predictor, SeriesPredictor) and predictor.series_length == 256
    png = sorted((tiny_dataset / "test").glob("*/*.png"))[0]
    predictions = predictor.predict_files([*((p, p) for p in csv_files.values()), (str(png), png)])
    assert [p.error for p in predictions[:3]] == [None, None, None]
    # By hand: the model on the preprocessed series, logits over the run's fitted temperature.
    from backend.data.csvseries import read_series_csv

    with torch.inference_mode():
        for prediction, path in zip(predictions, csv_files.values(), strict=False):
            x = torch.from_numpy(series_to_input(read_series_csv(path).values, 256))[None]
            expected = (predictor.model(x)["logits"][0] / predictor.temperature).softmax(0).numpy()
            got = np.array([prediction.probabilities[c] for c in predictor.class_names])
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
            assert prediction.predicted == predictor.class_names[int(expected.argmax())]
    # A plot image is read back into a series (its line) and predicted like a CSV.
    from backend.data.digitize import digitize_plot
    from backend.data.images import load_image_rgb

    assert predictions[3].error is None and "series read from the plot's line" in predictions[3].notes[0]
    read = digitize_plot(load_image_rgb(png)).values
    with torch.inference_mode():
        x = torch.from_numpy(series_to_input(read, 256))[None]
        expected = (predictor.model(x)["logits"][0] / predictor.temperature).softmax(0).numpy()
    got = np.array([predictions[3].probabilities[c] for c in predictor.class_names])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    frame = tmp_path / "frame.png"
    frame.write_bytes(encode_png(empty_axes()))
    answer = predictor.predict_file(frame)
    assert answer.predicted is None and answer.error.startswith("frame.png: no series could be read from the plot (")
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode_png(np.full((120, 160, 3), 255, dtype=np.uint8)))
    answer = predictor.predict_file(blank)
    assert answer.predicted is None and answer.error.startswith("blank.png has nothing drawn on it: all its 160x120")
    flat = tmp_path / "flat.csv"
    flat.write_text("value\n" + "2.5\n" * 40)
    answer = predictor.predict_file(flat)
    assert answer.predicted is None and answer.error.startswith("column 'value' is constant: all 40 values are 2.5")
    with pytest.raises(PredictError, match="series_cnn is a series model: it reads CSV series, not images"):
        Predictor.from_run(runs["series_cnn"])


def test_the_ensemble_averages_the_two_runs_calibrated_probabilities(runs, csv_files, tiny_dataset, tmp_path):
    ensemble = open_ensemble(runs["series_cnn"], runs["visual_cnn"], device="cpu", precision="fp32")  # either order
    assert isinstance(ensemble, EnsemblePredictor)
    csv = tiny_dataset / "csv" / "test" / "mean_shift" / "test-mean_shift-00000.csv"
    files = [(str(csv), csv), (csv_files[5000], csv_files[5000])]
    answers = ensemble.predict_files(files)
    image_t = read_checkpoint(store.get_run(runs["visual_cnn"]).checkpoint_path)["temperature"]
    series = ensemble.series
    names = ensemble.class_names
    for (name, path), answer in zip(files, answers, strict=True):
        assert answer.error is None, answer.error
        with torch.inference_mode():  # image run by hand: draw, crop and resize as it trained, normalise, logits / T
            image, _ = load_input(path, filename=name)
            batch = torch.from_numpy(np.array(ensemble.image.prepare(image))).permute(2, 0, 1)[None].float() / 255
            mean, std = (
                torch.tensor(ensemble.image.mean).view(1, 3, 1, 1),
                torch.tensor(ensemble.image.std).view(1, 3, 1, 1),
            )
            image_p = (ensemble.image.model((batch - mean) / std)["logits"][0] / image_t).softmax(0).numpy()
            from backend.data.csvseries import read_series_csv

            x = torch.from_numpy(series_to_input(read_series_csv(path).values, 256))[None]
            series_p = (series.model(x)["logits"][0] / series.temperature).softmax(0).numpy()
        series_p = series_p[[series.class_names.index(c) for c in names]]
        got = np.array([answer.probabilities[c] for c in names])
        np.testing.assert_allclose(got, (image_p + series_p) / 2, atol=1e-4)
        assert sum(answer.probabilities.values()) == pytest.approx(1.0)
    # A plot image: the image run reads it as it is, the series run reads its line back as a series.
    png = sorted((tiny_dataset / "test").glob("*/*.png"))[0]
    answer = ensemble.predict_file(png)
    alone = {kind: run.predict_file(png) for kind, run in (("image", ensemble.image), ("series", series))}
    assert answer.error is None and any(note.startswith("series read from the plot's line") for note in answer.notes)
    for c in names:
        expected = (alone["image"].probabilities[c] + alone["series"].probabilities[c]) / 2
        assert answer.probabilities[c] == pytest.approx(expected, abs=1e-6)
    # No line to read (a frame, nothing plotted in it): the image run answers alone, and says so.
    frame = tmp_path / "frame-ensemble.png"
    frame.write_bytes(encode_png(empty_axes()))
    answer = ensemble.predict_file(frame)
    assert answer.error is None and answer.probabilities == ensemble.image.predict_file(frame).probabilities
    assert any(note.startswith("image run alone: frame-ensemble.png: no series could be read") for note in answer.notes)
    # Nothing drawn at all: neither run names a class.
    blank = tmp_path / "blank-ensemble.png"
    blank.write_bytes(encode_png(np.full((120, 160, 3), 255, dtype=np.uint8)))
    answer = ensemble.predict_file(blank)
    assert answer.predicted is None and "blank-ensemble.png has nothing drawn on it" in answer.error
    with pytest.raises(PredictError, match="needs one image run and one series run"):
        open_ensemble(runs["visual_cnn"], runs["visual_cnn"])


def empty_axes() -> np.ndarray:
    """A white plot with a black frame and nothing plotted inside it."""
    image = np.full((120, 160, 3), 255, dtype=np.uint8)
    image[10:12], image[-12:-10], image[:, 10:12], image[:, -12:-10] = 0, 0, 0, 0
    return image


def test_series_tta_views_are_the_series_reversed_negated_and_both(tmp_path):
    # Every image TTA mode has its series counterpart, so the Predict page's choice works for both kinds.
    assert sorted(SERIES_TTA_VIEWS) == sorted(TTA_MODES.names())
    values = np.random.default_rng(3).standard_normal(512).cumsum()  # 2 points a stretch: min != max
    values[100] += 9.0
    x = torch.from_numpy(series_to_input(values))[None]
    views = series_tta_views(torch.cat([x, 2 * x]), "flip4")
    assert views.shape == (8, 3, 256)
    # View-major; each view is the model input of the transformed series itself.
    for v, transformed in enumerate((values, values[::-1], -values, -values[::-1])):
        expected = torch.from_numpy(series_to_input(transformed))
        torch.testing.assert_close(views[2 * v], expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(views[2 * v + 1], 2 * expected, rtol=0, atol=1e-6)
    assert series_tta_views(x, "none") is x
    with pytest.raises(ValueError, match="unknown test-time augmentation 'flip8' for a series model"):
        series_tta_views(x, "flip8")


def test_series_predictor_flip4_averages_the_four_series_answers(runs, csv_files, tiny_dataset, tmp_path):
    predictor = open_run(runs["series_cnn"], device="cpu")
    values = np.random.default_rng(5).standard_normal(512).cumsum()  # 512 = 2 x 256: reversal commutes exactly
    values[300] -= 12.0
    transformed = {}
    for name, series in (("as-is", values), ("reversed", values[::-1]), ("negated", -values),
                         ("both", -values[::-1])):  # fmt: skip
        path = tmp_path / f"{name}.csv"
        path.write_text("value\n" + "\n".join(map(repr, series.tolist())) + "\n")
        transformed[name] = path
    plain = {name: predictor.predict_file(path) for name, path in transformed.items()}
    assert all(answer.n_views == 1 and answer.tta_agreement == 1.0 for answer in plain.values())
    answer = predictor.predict_file(transformed["as-is"], tta="flip4")
    names = predictor.class_names
    per_view = np.array([[plain[k].probabilities[c] for c in names] for k in ("as-is", "reversed", "negated", "both")])
    assert np.ptp(per_view, axis=0).max() > 1e-3  # the views answer differently, so the mean below tells them apart
    np.testing.assert_allclose([answer.probabilities[c] for c in names], per_view.mean(axis=0), atol=1e-5)
    best = names.index(answer.predicted)
    assert answer.n_views == 4 and answer.tta_agreement == (per_view.argmax(axis=1) == best).mean()
    assert answer.tta_spread == pytest.approx(np.ptp(per_view[:, best]), abs=1e-5)
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        predictor.predict_files([(csv_files[50], csv_files[50])], tta="flip8")
    # The ensemble hands the mode to both members.
    ensemble = open_ensemble(runs["visual_cnn"], runs["series_cnn"], device="cpu", precision="fp32")
    both = ensemble.predict_file(transformed["as-is"], tta="flip4")
    image = ensemble.image.predict_file(transformed["as-is"], tta="flip4")
    for c in names:
        assert both.probabilities[c] == pytest.approx((image.probabilities[c] + answer.probabilities[c]) / 2, abs=1e-5)


def test_predict_cli_takes_an_ensemble_run(runs, csv_files, capsys):
    code = cli(["predict", "--run", str(runs["visual_cnn"]), "--ensemble-run", str(runs["series_cnn"]), "--json",
                "--device", "cpu", csv_files[300]])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    answer = json.loads(out)
    assert (
        answer["error"] is None and "mean of calibrated probabilities of visual_cnn and series_cnn" in answer["notes"]
    )
    assert cli(["predict", "--checkpoint", store.get_run(runs["series_cnn"]).checkpoint_path, "--ensemble-run",
                str(runs["visual_cnn"]), csv_files[50]]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == "error: --ensemble-run needs --run (an ensemble is made of two runs)"


def test_a_dataset_without_csvs_cannot_train_a_series_model(tiny_dataset, tmp_path):
    images_only = tmp_path / "images_only"
    for split in ("train", "test"):
        shutil.copytree(tiny_dataset / split, images_only / split)
    with pytest.raises(ConfigError, match=r"a series model trains on the CSV each plot was drawn from, and 81 of "
                                          r"the 81 images .* have none \(train/"):  # fmt: skip
        build_config({**TINY, "data": str(images_only), "model": "series_cnn"})
    build_config({**TINY, "data": str(images_only), "model": "visual_cnn"})  # an image model still can


def test_predict_page_runs_a_series_run_and_the_ensemble_on_csvs(runs, tiny_dataset):
    import streamlit as st

    from tests.test_pages import open_page

    st.cache_data.clear()
    st.cache_resource.clear()
    csv = tiny_dataset / "csv" / "test" / "volatility" / "test-volatility-00000.csv"
    png = tiny_dataset / "test" / "volatility" / "test-volatility-00000.png"
    at = open_page("predict")
    at.selectbox(key="predict_run").set_value(runs["series_cnn"]).run()
    uploads = [("series.csv", csv.read_bytes(), "text/csv"), ("plot.png", png.read_bytes(), "image/png")]
    at.file_uploader(key="predict_files").set_value(uploads).run()
    assert not at.exception, [e.value for e in at.exception]
    results = at.dataframe[0].value
    assert "error" not in results.columns and results.loc[0, "predicted"]  # no file failed: no error column
    assert "error" not in results.columns  # the column shows only when a file failed
    assert results.loc[1, "predicted"] and "series read from the plot's line" in results.loc[1, "notes"]
    assert [m.value for m in at.metric if m.label == "Predicted"] == results["predicted"].tolist()
    at.segmented_control(key="predict_tta").set_value("flip4").run()  # the series, reversed, negated and both
    assert not at.exception, [e.value for e in at.exception]
    assert len([c for c in at.caption if "/4 views vote " in c.value]) == 2  # one per file
    at.segmented_control(key="predict_tta").set_value("none").run()
    at.selectbox(key="predict_ensemble").set_value(runs["visual_cnn"]).run()
    assert not at.exception, [e.value for e in at.exception]
    results = at.dataframe[0].value
    assert "mean of calibrated probabilities of visual_cnn and series_cnn" in results.loc[0, "notes"]
    assert "error" not in results.columns  # the column shows only when a file failed
    assert results.loc[1, "predicted"] and "series read from the plot's line" in results.loc[1, "notes"]
    st.cache_resource.clear()


def test_train_page_offers_series_cnn_and_says_why_a_dataset_without_csvs_cannot_train_it(
    tiny_dataset, tmp_path, monkeypatch
):
    import streamlit as st

    from tests.test_pages import open_page

    for split in ("train", "test"):
        shutil.copytree(tiny_dataset / split, tmp_path / "data" / "images_only" / split)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    st.cache_data.clear()
    at = open_page("train")
    at.selectbox(key="train_model").set_value("series_cnn").run()
    assert at.number_input(key="train_series_cnn_batch_size").value == 64  # the family's defaults are filled in
    drawn = {w.key for w in at.number_input} | {w.key for w in at.selectbox}
    assert "train_series_cnn_image_size" not in drawn and "train_series_cnn_crop" not in drawn  # image-only options
    at.selectbox(key="train_model").set_value("visual_cnn").run()
    assert at.number_input(key="train_visual_cnn_image_size").value > 0
    at.selectbox(key="train_model").set_value("series_cnn").run()
    before = len(store.list_runs())
    at.selectbox(key="train_series_cnn_data").set_value(str(tmp_path / "data" / "images_only"))
    at.button(key="train_launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("a series model trains on the CSV each plot was drawn from" in e.value for e in at.error), [
        e.value for e in at.error
    ]
    assert len(store.list_runs()) == before


def test_series_training_reads_half_its_series_back_from_the_plots_only_with_augmentation(tiny_dataset, tmp_path,
                                                                                          monkeypatch):  # fmt: skip
    from backend.device import make_runtime
    from backend.training.config import load_split
    from backend.training.series_data import build_series_training_data

    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    built = {}
    for augmentation in ("light", "none"):
        config = build_config({**TINY, "data": str(tiny_dataset), "model": "series_cnn", "augmentation": augmentation})
        built[augmentation] = build_series_training_data(config, load_split(config), make_runtime("cpu", "fp32"))
    light, none = built["light"], built["none"]
    assert none.train_read_inputs is None and "read back" not in none.path
    assert "half of the training series read back from their plots" in light.path
    assert light.train_read_inputs.shape == light.train_inputs.shape
    differs = (light.train_read_inputs - light.train_inputs).abs().flatten(1).amax(1) > 1e-4
    assert differs.float().mean() > 0.8  # nearly every plot's line was read (the rest keep their CSV)
    assert torch.equal(light.train_inputs, none.train_inputs)  # the CSVs themselves are unchanged
    assert list((tmp_path / "artifacts" / "cache").glob("series-read-256-*.npy"))


def test_series_tta_bench_pairs_flip4_against_none_on_the_same_items(runs, tiny_dataset, tmp_path):
    """``bench/series_tta.py`` scores exactly what the predictor answers in each mode, paired."""
    from bench.scoring import csv_files
    from bench.series_tta import report, score_set

    for folder in (tiny_dataset / "csv" / "test").iterdir():  # two test CSVs per class
        (tmp_path / folder.name).mkdir()
        for path in sorted(folder.glob("*.csv"))[:2]:
            shutil.copy(path, tmp_path / folder.name)
    predictor = open_run(runs["series_cnn"], device="cpu")
    names, files = predictor.class_names, csv_files(tmp_path)
    result = score_set(files, {"series": predictor}, names, seed=0)
    row = result["rows"]["series"]
    assert result["n"] == len(files) == 2 * len(names) and set(row) == {"none", "flip4", "paired"}
    for mode in ("none", "flip4"):
        answers = predictor.predict_files([(str(p), p) for p in files], mode)
        assert row[mode]["accuracy"] == np.mean([a.predicted == p.parent.name for a, p in zip(answers, files, strict=True)])
    assert row["paired"]["macro_f1_diff"] == pytest.approx(row["flip4"]["macro_f1"] - row["none"]["macro_f1"])
    assert row["paired"]["n_paired"] == len(files)
    args = type("Args", (), {"series_run": runs["series_cnn"], "image_run": None, "independent_per_class": 40,
                             "test_per_class": 40, "seed": 0})()  # fmt: skip
    text = report({"own test split": result}, args, {"series": runs["series_cnn"]})
    assert f"| own test split | {len(files)} | series | " in text


def test_seeds_bench_pairs_stored_runs_on_a_csv_set_through_the_upload_path(runs, tiny_dataset, tmp_path):
    """``bench/seeds_ab.py --csv-sets``: each pair's two runs are scored on the same CSVs through
    ``predict_files``, and the pooled row holds exactly what each run's predictor answers."""
    from sklearn.metrics import f1_score

    from bench.scoring import csv_files
    from bench.seeds_ab import pooled_on_csv_sets

    for folder in (tiny_dataset / "csv" / "test").iterdir():
        (tmp_path / folder.name).mkdir()
        for path in sorted(folder.glob("*.csv"))[:2]:
            shutil.copy(path, tmp_path / folder.name)
    image, series = runs["visual_cnn"], runs["series_cnn"]
    names = list(store.get_run(series).class_names)
    files = csv_files(tmp_path)
    [(label, pooled, y_true, pairs)] = pooled_on_csv_sets([image, series], names, {"a set": tmp_path}, seed=0, resamples=50)
    truth = [names.index(p.parent.name) for p in files]
    expected = {}
    for run_id in (image, series):
        answers = open_run(run_id, device="cpu", precision="fp32").predict_files([(str(p), p) for p in files], "none")
        expected[run_id] = f1_score(truth, [names.index(a.predicted) for a in answers], average="macro", labels=range(len(names)))
    assert label == "a set" and pooled["n_paired"] == len(files) and pooled["n_pairs"] == 1
    assert list(y_true) == truth and len(pairs) == 1
    assert pooled["macro_f1_a"] == pytest.approx(expected[image]) and pooled["macro_f1_b"] == pytest.approx(expected[series])
    assert pooled["macro_f1_diff"] == pytest.approx(expected[series] - expected[image])
