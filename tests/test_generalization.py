"""Generalization checks: sub-kind restriction on the command line, evaluation on varied-style plots,
independent-generator CSVs through the prediction path, and the bench's held-out plan."""

from __future__ import annotations

import json

import pytest

from backend.__main__ import main as backend_main
from backend.data.series import CLASSES, SUBKINDS
from backend.predict import Predictor, evaluate_folder
from bench.generalization import HELD_OUT, KEPT, DataSpec, Trained, score_csvs, top_confusions
from bench.independent_series import write_dataset

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
        (["--classes", "volatility,trend_shift", "--subkinds", "mean_shift=step_up"], "not being generated: mean_shift"),
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
