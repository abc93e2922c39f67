"""Generalization checks: sub-kind restriction on the command line, evaluation on varied-style plots,
independent-generator CSVs through the prediction path, and the bench's held-out plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.__main__ import main as backend_main
from backend.data.series import CLASSES, SUBKINDS
from backend.predict import Predictor, evaluate_folder
from bench.generalization import HELD_OUT, KEPT, DataSpec, Trained, score_csvs
from bench.independent_series import write_dataset
from bench.scoring import top_confusions

SMALL = "48x36"


def _generate(out, *options: str) -> int:
    return backend_main(["generate", "--out", str(out), "--train-per-class", "4", "--test-per-class", "2",
                         "--seed", "0", "--size", SMALL, "--workers", "1", *options])  # fmt: skip


def _subkinds_drawn(root) -> dict[str, set[str]]:
    drawn: dict[str, set[str]] = {}
    for sample in json.loads((root / "manifest.json").read_text())["samples"]:
        drawn.setdefault(sample["class"], set()).add(sample["subkind"])
    return drawn


def test_subkinds_option_restricts_the_manifest(tmp_path):
    code = _generate(tmp_path / "d", "--classes", "mean_shift,point_anomaly",
                     "--subkinds", "mean_shift=step_up+ramp_up, point_anomaly=several")  # fmt: skip
    assert code == 0
    assert _subkinds_drawn(tmp_path / "d") == {"mean_shift": {"step_up", "ramp_up"}, "point_anomaly": {"several"}}


def test_exclude_subkinds_leaves_them_out_and_keeps_the_rest(tmp_path):
    code = _generate(tmp_path / "d", "--classes", "mean_shift,volatility", "--exclude-subkinds", "volatility=bursts")
    assert code == 0
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["options"]["subkinds"] == {"volatility": ["garch", "stochastic"]}
    drawn = _subkinds_drawn(tmp_path / "d")
    assert drawn["volatility"] <= {"garch", "stochastic"}
    assert drawn["mean_shift"] <= set(SUBKINDS["mean_shift"])  # a class not named keeps every sub-kind


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--exclude-subkinds", "volatility=bursts+garch+stochastic"], "leaves volatility no sub-kind"),
        (["--exclude-subkinds", "volatility=calm"], "unknown sub-kind(s) calm for volatility"),
        (["--exclude-subkinds", "weather=rain"], "unknown class 'weather'"),
        (["--subkinds", "mean_shift=sideways"], "unknown sub-kind(s) sideways for mean_shift"),
        (
            ["--classes", "volatility,trend_shift", "--subkinds", "mean_shift=step_up"],
            "not being generated: mean_shift",
        ),
    ],
)
def test_bad_subkind_options_fail_with_what_to_change(tmp_path, capsys, options, message):
    assert _generate(tmp_path / "d", *options) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("spec", ["mean_shift", "mean_shift=", "=step_up", "mean_shift=step_up,mean_shift=ramp_up"])
def test_malformed_subkind_specs_are_usage_errors(tmp_path, spec):
    with pytest.raises(SystemExit) as stopped:
        _generate(tmp_path / "d", "--subkinds", spec)
    assert stopped.value.code == 2


def test_subkinds_and_exclude_subkinds_are_exclusive(tmp_path):
    with pytest.raises(SystemExit):
        _generate(tmp_path / "d", "--subkinds", "mean_shift=step_up", "--exclude-subkinds", "mean_shift=ramp_up")


def test_held_out_plan_leaves_one_subkind_per_class_out():
    assert set(HELD_OUT) == set(KEPT) == set(CLASSES)
    for name in CLASSES:
        assert len(HELD_OUT[name]) == 1 and KEPT[name]
        assert set(KEPT[name]) | set(HELD_OUT[name]) == set(SUBKINDS[name])
        assert not set(KEPT[name]) & set(HELD_OUT[name])


def test_generated_sets_are_keyed_by_the_generator_source(tmp_path, monkeypatch):
    """A changed generator or renderer must never reuse plots drawn by the old one."""
    import bench.generalization as bench

    spec = DataSpec(style="team", seed=0, train=4, test=2)
    before = spec.folder(tmp_path)
    assert spec.folder(tmp_path) == before and DataSpec("team", 1, 4, 2).folder(tmp_path) != before
    monkeypatch.setattr(bench, "GENERATOR_SOURCE", bench.GENERATOR_SOURCE + "# edited")
    assert spec.folder(tmp_path) != before


def test_evaluate_works_on_varied_style_plots(completed_runs, tiny_dataset_varied):
    predictor = Predictor.from_run(completed_runs["visual_cnn"], device="cpu")
    result = evaluate_folder(predictor, tiny_dataset_varied)
    assert result.split == "test" and result.n_samples == 3 * len(CLASSES) and not result.skipped
    assert 0.0 <= result.macro_f1 <= 1.0
    assert [row["class_name"] for row in result.per_class] == predictor.class_names
    assert set(result.predictions["predicted"]) <= set(predictor.class_names)
    assert result.confusion.sum() == result.n_samples


def test_independent_csvs_get_a_valid_class_through_the_csv_path(completed_runs, tmp_path):
    write_dataset(tmp_path / "independent", per_class=1, seed=3)
    files = sorted((tmp_path / "independent").glob("*/*.csv"))
    predictor = Predictor.from_run(completed_runs["visual_cnn"], device="cpu")
    predictions = predictor.predict_files([(p.name, p) for p in files])
    assert len(predictions) == len(CLASSES)
    for prediction in predictions:
        assert prediction.error is None and prediction.predicted in predictor.class_names
        assert prediction.image.shape == (600, 800, 3)  # drawn by the team-style renderer
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)

    model = Trained(predictor, DataSpec("team", 0, 6, 3), {}, train_acc=1.0, own_f1=1.0, seconds=0.0, device="cpu")
    cell = score_csvs("independent", model, tmp_path / "independent", "independent CSVs")
    assert cell.n == len(CLASSES) and cell.errors == 0 and 0.0 <= cell.macro_f1 <= 1.0
    assert sum(map(sum, cell.confusion)) == cell.n  # labels came from the folder names, one per class


def test_top_confusions_are_the_largest_off_diagonal_cells():
    matrix = [[5, 2, 0], [0, 4, 3], [1, 0, 6]]
    assert top_confusions(matrix, ["a", "b", "c"], k=2) == [("b", "c", 3), ("a", "b", 2)]


def test_linked_sets_carry_each_plots_csv_where_a_series_model_finds_it(tiny_dataset, tmp_path):
    """Mixed and kept sets are hard links: each plot's CSV must come along (series models train on it)."""
    from backend.training.series_data import csv_for_png
    from bench.generalization import _link

    plots = sorted(str(p.relative_to(tiny_dataset)) for p in tiny_dataset.glob("t*/*/*.png"))[:5]
    _link(tiny_dataset, tmp_path, plots, prefix="team-")
    for plot in plots:
        linked = tmp_path / Path(plot).parent / f"team-{Path(plot).name}"
        series = csv_for_png(linked, tmp_path)
        assert (
            series is not None and series.read_bytes() == (tiny_dataset / "csv" / plot).with_suffix(".csv").read_bytes()
        )


def test_series_model_cells_are_scored_on_csvs_with_intervals(tmp_path):
    """``--model series_cnn`` end to end on a tiny set: trained on the dataset's CSVs, every cell scored
    through its CSVs with a bootstrap interval, the style-only cells skipped with a note."""
    from bench.generalization import parse_args, report, run_cells

    args = parse_args(["--model", "series_cnn", "--train-per-class", "6", "--test-per-class", "1", "--epochs", "1",
                       "--plot-size", "96x72", "--cells", "own,varied,varied_csv,harder", "--workdir", str(tmp_path),
                       "--workers", "1", "--label", "tiny"])  # fmt: skip
    results, trained, notes = run_cells(args, {})
    assert set(notes) == {"varied", "varied_csv"} and list(trained) == ["main/series_cnn"]
    assert [(r.cell, r.model, r.n, r.errors) for r in results] == [
        ("own", "series_cnn", len(CLASSES), 0), ("harder", "series_cnn", len(CLASSES), 0)
    ]  # fmt: skip
    for r in results:
        low, high = r.macro_f1_ci
        assert low <= r.macro_f1 <= high and sum(map(sum, r.confusion)) == r.n and "CSVs" in r.tested_on
    section = report(args, results, trained, notes)
    assert "- varied: skipped" in section and "- varied_csv: skipped" in section
    assert (
        f"**{results[0].macro_f1:.3f} [{results[0].macro_f1_ci[0]:.3f}, {results[0].macro_f1_ci[1]:.3f}]**" in section
    )


def test_ensemble_cell_is_the_mean_of_the_members_calibrated_probabilities(completed_runs, tiny_dataset, tmp_path):
    """The bench's ensemble rows score exactly what ``predict --ensemble-run`` answers, on the members' items."""
    import shutil

    import numpy as np

    from backend.predict_series import EnsemblePredictor, SeriesPredictor
    from backend.runs.lifecycle import build_config, train_run
    from bench.generalization import score_members
    from bench.scoring import csv_files, member_probabilities, with_ensemble

    series_run = train_run(build_config({"data": str(tiny_dataset), "model": "series_cnn", "epochs": 1,
                                         "device": "cpu", "batch_size": 16}))  # fmt: skip
    assert series_run.status == "completed"
    image = Predictor.from_run(completed_runs["visual_cnn"], device="cpu")
    series = SeriesPredictor.from_run(series_run.run_id, device="cpu")
    for name in CLASSES:  # one test CSV per class
        (tmp_path / name).mkdir()
        shutil.copy(sorted((tiny_dataset / "csv" / "test" / name).glob("*.csv"))[0], tmp_path / name)
    spec = DataSpec("team", 0, 6, 3)
    members = {m: Trained(p, spec, {}, train_acc=1.0, own_f1=0.5, seconds=0.0, device="cpu")
               for m, p in (("visual_cnn", image), ("series_cnn", series))}  # fmt: skip
    rows = score_members("own", members, tmp_path, "one test CSV per class", ensemble=True)
    assert [r.model for r in rows] == ["visual_cnn", "series_cnn", "ensemble"]
    assert rows[2].own_f1 is None and rows[0].own_f1 == 0.5 and all(r.n == len(CLASSES) for r in rows)

    files = csv_files(tmp_path)[:3]  # (each CSV is drawn for the image model: keep the check small)
    y_true, probabilities, errors = member_probabilities({"i": image, "s": series}, files, image.class_names)
    mean = with_ensemble(probabilities, "i", "s")["ensemble"]
    np.testing.assert_allclose(mean, (probabilities["i"] + probabilities["s"]) / 2)
    product = EnsemblePredictor(image, image.temperature, series).predict_files([(str(p), p) for p in files])
    np.testing.assert_allclose(mean, [[a.probabilities[c] for c in image.class_names] for a in product], atol=1e-6)
    assert errors == 0 and y_true == [image.class_names.index(f.parent.name) for f in files]
    predicted = [row.index(1) for row in rows[2].confusion[: len(files)] if sum(row) == 1]  # one item per class
    assert predicted[: len(files)] == mean.argmax(axis=1).tolist()
