"""Comparing two stored runs: paired on the same items, refused on different ones, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from backend import store
from backend.config import REPO_ROOT
from backend.evaluation.compare import compare_runs, winner
from backend.evaluation.report import comparison_fields
from tests.fixtures.comparison import plant_run, planted_labels, with_errors


@pytest.fixture
def db_url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("RUNS_DB_URL", url)
    return url


def test_identical_predictions_are_not_a_significant_difference(db_url):
    y = planted_labels()
    a = plant_run(y, with_errors(y, 30))
    b = plant_run(y, with_errors(y, 30))
    result = compare_runs(a, b)
    assert result["comparable"] and result["n_paired"] == 300
    assert result["macro_f1_diff"] == 0.0 and result["mcnemar_p"] == 1.0 and not result["significant"]
    assert winner(result) is None
    assert result["sentence"] == (
        f"run {a} vs run {b}: +0.0 points macro-F1 [+0.0, +0.0], McNemar p = 1.00: not a significant difference"
    )


def test_large_planted_difference_names_the_winner_either_way_round(db_url):
    y = planted_labels()
    strong, weak = plant_run(y, with_errors(y, 10)), plant_run(y, with_errors(y, 90))
    result = compare_runs(weak, strong)
    assert result["comparable"] and result["significant"] and result["macro_f1_diff"] < 0  # first minus second
    assert result["discordant"] == [0, 80] and result["macro_f1_diff_ci"][1] < 0
    assert winner(result) == strong and result["sentence"].endswith(f"run {strong} is significantly better")
    assert compare_runs(strong, weak)["macro_f1_diff"] == pytest.approx(-result["macro_f1_diff"])


def test_items_are_matched_by_hash_not_by_order(db_url):
    y = planted_labels()
    pred = with_errors(y, 30)
    hashes = [f"item-{i}" for i in range(y.size)]
    a = plant_run(y, pred, hashes=hashes)
    b = plant_run(y[::-1], pred[::-1], hashes=hashes[::-1])  # same items, stored in reverse order
    result = compare_runs(a, b)
    assert result["comparable"] and result["discordant"] == [0, 0] and result["macro_f1_diff"] == 0.0


def test_runs_on_different_items_are_not_comparable(db_url):
    y = planted_labels()
    a = plant_run(y, y)
    b = plant_run(y, y, hashes=[f"other-{i}" if i < 50 else f"item-{i}" for i in range(y.size)])
    result = compare_runs(a, b)
    assert not result["comparable"] and result["macro_f1_diff"] is None and not result["significant"]
    assert result["reason"] == f"different test items: 250 shared, 50 only in run {a}, 50 only in run {b}"
    assert result["sentence"].startswith(f"run {a} vs run {b}: not comparable (different test items")


def test_old_run_without_predictions_or_other_classes_is_not_comparable(db_url):
    y = planted_labels()
    a = plant_run(y, y)
    old = store.create_run(name="old", model="visual_cnn", config={}, dataset="data/demo", class_names=["x", "y"])
    result = compare_runs(a, old)
    assert not result["comparable"] and "no stored per-item test predictions" in result["reason"]
    assert result["selection_split_b"] == "test"  # stored before validation selection
    store.save_predictions(old, [{"item_hash": "item-0", "path": "p", "true_index": 0, "pred_index": 0}])
    assert compare_runs(a, old)["reason"] == "the two runs have different class names"


def _cli(*args: str, db_url: str) -> subprocess.CompletedProcess:
    env = os.environ | {"RUNS_DB_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "backend", "compare", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_json_and_text(db_url):
    y = planted_labels()
    strong, weak = plant_run(y, with_errors(y, 10)), plant_run(y, with_errors(y, 90), selection_split=None)
    done = _cli(str(strong), str(weak), "--json", db_url=db_url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in (
        "comparable",
        "n_paired",
        "macro_f1_diff",
        "macro_f1_diff_ci",
        "accuracy_diff",
        "mcnemar_p",
        "significant",
    ):
        assert key in result
    assert result["comparable"] and result["significant"] and result["n_paired"] == 300
    assert result["accuracy_diff"] == pytest.approx(80 / 300)

    text = _cli(str(strong), str(weak), db_url=db_url).stdout.splitlines()
    assert text[0].startswith(f"run {strong} vs run {weak}: +") and text[0].endswith(
        f"run {strong} is significantly better"
    )
    assert f"run {weak} was selected on test: its test figures are optimistic" in text

    missing = _cli(str(strong), "999", db_url=db_url)
    assert missing.returncode == 1 and missing.stdout.strip() == "error: run 999 not found" and not missing.stderr


def test_comparison_fields_for_new_and_old_runs(db_url):
    y = planted_labels()
    new = comparison_fields(store.get_run(plant_run(y, with_errors(y, 30))))
    assert new["selection_split"] == "validation" and new["temperature"] == 1.5
    assert new["splits"] == {"train": 600, "val": 100, "test": 300}
    assert new["test"]["accuracy"] == pytest.approx(0.9) and new["test"]["ece"] == 0.03
    lo, hi = new["test"]["macro_f1_ci"]
    assert lo < new["test"]["macro_f1"] < hi

    old_id = store.create_run(
        name="old",
        model="visual_cnn",
        config={},
        dataset="d",
        class_names=["a", "b"],
        class_counts={"train": {"a": 5, "b": 3}, "test": {"a": 2, "b": 2}},
    )
    store.update_run(old_id, best_val_acc=0.75, best_val_f1=0.7)
    old = comparison_fields(store.get_run(old_id))
    assert old["selection_split"] == "test" and old["splits"] == {"train": 8, "test": 4}
    assert old["test"]["accuracy"] == 0.75 and old["test"]["macro_f1"] == 0.7
    assert old["test"]["macro_f1_ci"] is None and old["temperature"] is None
    # a row of list_runs reads the same as the record
    assert comparison_fields(store.list_runs().set_index("id").loc[old_id])["test"]["macro_f1"] == 0.7
