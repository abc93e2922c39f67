"""bench/crop.py's style breakdown: every other-tool PNG records what it shows, and the gap is broken
down by those traits (which styles cost the image model)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend import store
from backend.data.images import load_image_rgb
from bench.crop import (
    TRAITS,
    build_test_inputs,
    change_breakdown,
    change_breakdown_lines,
    other_tool_png,
    style_breakdown,
    timestamps,
)
from bench.independent_series import generate

REPO = Path(__file__).resolve().parent.parent


def test_recording_traits_leaves_the_drawing_unchanged():
    def draw(traits):
        rng = np.random.default_rng([3, 1, 4])
        values = generate("mean_shift", rng)
        return other_tool_png(values, timestamps(rng, len(values)), rng, traits)

    traits: dict = {}
    assert np.array_equal(draw(None), draw(traits))
    assert set(traits) == set(TRAITS) | {"theme", "axes_box"}


def test_the_plot_area_bench_scores_each_finder_against_the_recorded_axes():
    """bench/plot_area.py: matplotlib's own axes box (recorded by other_tool_png) is where the finder
    looks; IoU is 1 for the same box and 0 for disjoint ones; finder 3 keeps what finder 2 found."""
    from backend.data.plotarea import FINDER_VERSIONS, Box
    from bench.plot_area import iou, other_plots, score, table

    assert iou(Box(10, 20, 110, 70), (10, 20, 110, 70)) == 1.0
    assert iou(Box(0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou(Box(0, 0, 10, 10), (0, 0, 10, 20)) == 0.5
    result = score(other_plots(12, seed=5))
    ious = {v: np.concatenate([np.array(x) for x in result["iou"][v].values()]) for v in FINDER_VERSIONS}
    assert all(len(values) == 12 for values in ious.values())
    assert np.mean(ious[FINDER_VERSIONS[-1]] >= 0.9) >= 0.75  # the recorded boxes are the axes the finder finds
    assert not result["worse"]
    assert {r: len(ms) for r, ms in result["resize_ms"].items()} == {"bilinear": 12, "ink": 12}
    lines = table("other", result)
    assert any(line.startswith("| **all** | 12 |") for line in lines)
    assert any(line.startswith("Resize of the crop to 128 px") and "ink median" in line for line in lines)


def test_traits_describe_the_drawn_png_and_the_breakdown_counts_what_the_png_lost(tmp_path):
    items = build_test_inputs(tmp_path, per_class=2, seed=11)
    traits = [json.loads(files["traits"].read_text()) for _, _, files in items]
    assert len(traits) == 18 and all(set(t) >= set(TRAITS) for t in traits)
    for t, (_, _, files) in zip(traits, items, strict=True):
        image = load_image_rgb(files["other"])
        assert abs(image.shape[1] - t["width_px"]) <= 1
        corner_brightness = image[:4, :4].mean()  # the figure's face colour
        assert (corner_brightness < 100) == t["dark"], (files["other"], corner_brightness)

    # CSVs all right; the PNG wrong exactly where the plot is dark
    y_true = list(range(18))
    dark = [t["dark"] for t in traits]
    assert 0 < sum(dark) < 18  # this seed draws both
    png = [y if not d else (y + 1) % 18 for y, d in zip(y_true, dark, strict=True)]
    rows = style_breakdown(items, y_true, {"csv": y_true, "other": png}, min_items=1)
    dark_row = next(r for r in rows if r["trait"] == "dark" and r["value"] == "true")
    assert dark_row == {"trait": "dark", "value": "true", "n": sum(dark), "csv_acc": 1.0, "png_acc": 0.0,
                        "lost": sum(dark), "won": 0}  # fmt: skip
    light_row = next(r for r in rows if r["trait"] == "dark" and r["value"] == "false")
    assert light_row["png_acc"] == 1.0 and light_row["lost"] == 0
    assert rows[0]["png_acc"] - rows[0]["csv_acc"] == min(r["png_acc"] - r["csv_acc"] for r in rows)
    # run B (the PNG answers above) against run A (right on every PNG): B loses the dark plots only
    changes = change_breakdown(items, y_true, y_true, png, min_items=1)
    assert changes[0]["b_acc"] - changes[0]["a_acc"] == -1.0  # the worst change first: a trait all dark
    dark_change = next(r for r in changes if r["trait"] == "dark" and r["value"] == "true")
    assert dark_change == {"trait": "dark", "value": "true", "n": sum(dark), "a_acc": 1.0, "b_acc": 0.0,
                           "only_a": sum(dark), "only_b": 0}  # fmt: skip
    table = change_breakdown_lines(changes, limit=3)
    assert len(table) == 4 + 6 and table[4].split(" | ")[-1] == f"{changes[0]['only_a']} / 0 |"
    # a second call finds every file drawn and redraws nothing
    stamp = items[0][2]["other"].stat().st_mtime_ns
    build_test_inputs(tmp_path, per_class=2, seed=11)
    assert items[0][2]["other"].stat().st_mtime_ns == stamp


def test_another_seed_in_the_same_folder_is_another_draw(tmp_path):
    first = build_test_inputs(tmp_path, per_class=1, seed=11)
    second = build_test_inputs(tmp_path, per_class=1, seed=12)
    csvs = [(a[2]["csv"].read_text(), b[2]["csv"].read_text()) for a, b in zip(first, second, strict=True)]
    assert all(x != y for x, y in csvs)  # new series, not the files the first seed drew


def test_the_paired_style_bench_splits_a_comparison_by_the_recorded_style(tmp_path):
    """bench/paired_by_style.py: every test plot of a mixed dataset lands in the team group or its
    theme's, and a difference planted on the team plots shows there and nowhere else."""
    from backend.data.generate import generate_dataset
    from backend.data.series import CLASSES
    from bench.paired_by_style import TEAM, markdown, paired_rows, style_groups

    generate_dataset(tmp_path / "mixed", train_per_class=1, test_per_class=4, seed=3, style="mixed", workers=1)
    manifest = json.loads((tmp_path / "mixed" / "manifest.json").read_text())
    groups = style_groups(manifest)
    tests = [s for s in manifest["samples"] if s["split"] == "test"]
    assert sorted(groups) == sorted(s["png"] for s in tests)
    team = [s["png"] for s in tests if groups[s["png"]] == TEAM]
    assert 0 < len(team) < len(tests)  # mixed: both halves
    assert {groups[s["png"]] for s in tests} - {TEAM} <= {s["style"]["theme"] for s in tests}

    paths = [s["png"] for s in tests]
    y_true = np.array([CLASSES.index(s["class"]) for s in tests])
    pred_b = y_true.copy()
    pred_a = np.where(np.isin(paths, team), (y_true + 1) % len(CLASSES), y_true)  # A misses every team plot
    rows = {row["group"]: row for row in paired_rows(paths, y_true, pred_a, pred_b, CLASSES, groups, resamples=200)}
    assert rows["all"]["n"] == len(tests) and rows[TEAM]["n"] == len(team)
    assert rows[TEAM]["diff"] == 1.0 and rows[TEAM]["accuracy_a"] == 0.0
    assert rows["varied"]["diff"] == 0.0 and rows["varied"]["p"] == 1.0
    assert rows["all"]["diff"] == pytest.approx(len(team) / len(tests))
    assert sum(row["n"] for name, row in rows.items() if name.startswith("varied,")) == len(tests) - len(team)
    assert "| team style |" in markdown(list(rows.values()), 1, 2)


def test_two_runs_are_compared_item_by_item_and_a_closed_gap_shows(tmp_path):
    """bench/crop.py --run A --against B: each input's score B - A, and each PNG family's gap change
    on one resample of the series; run records are the store's fields the section reads."""
    from types import SimpleNamespace

    from backend.data.series import CLASSES
    from bench.crop import comparison_section, main

    rng = np.random.default_rng(5)
    y_true = list(np.repeat(np.arange(len(CLASSES)), 20))
    right = np.array(y_true)
    wrong = (right + 1) % len(CLASSES)
    lost = rng.random(right.size) < 0.3  # run A loses 30% of the series as other-tool PNGs
    a = {"csv": list(right), "varied": list(right), "other": list(np.where(lost, wrong, right))}
    b = {"csv": list(right), "varied": list(right), "other": list(right)}  # run B loses none
    run_a = SimpleNamespace(id=1, name="before", test_metrics={"macro_f1": 0.9, "macro_f1_ci": [0.88, 0.92]})
    run_b = SimpleNamespace(id=2, name="after", test_metrics={})
    text = comparison_section(SimpleNamespace(test_per_class=20, seed=0), run_a, run_b, y_true, a, b,
                              list(CLASSES), 1.0)  # fmt: skip
    scores_text, gaps_text = text.split("| PNG family")

    def rows(part: str) -> dict[str, list[str]]:
        return {cells[0]: cells for line in part.splitlines() if line.startswith("| ")
                for cells in [[c.strip() for c in line.strip("|").split("|")]]}  # fmt: skip

    scores, gaps = rows(scores_text), rows(gaps_text)
    assert scores["csv"][1:] == ["1.000", "1.000", "0.000 [0.000, 0.000]", "0 / 0", "1.000"]
    assert scores["other"][4] == f"0 / {int(lost.sum())}"  # only B right on every series A lost
    assert float(scores["other"][3].split()[0]) > 0.2 and float(scores["other"][5]) < 0.001
    assert gaps["other"][4] == "yes" and float(gaps["other"][3].split()[0]) < -0.2  # B closed the gap
    assert gaps["varied"][1:] == ["+0.000", "+0.000", "0.000 [0.000, 0.000]", "not shown"]
    assert "Run A = 1 (before, own test 0.900 [0.880, 0.920])" in text and "own test —" in text
    with pytest.raises(SystemExit):
        main(["--against", "2"])  # --against needs --run
    # --against-ensemble: B is the ensemble of A and a series run, named so and rerun with its own flag
    ensemble = SimpleNamespace(id="1 + 7", name="ensemble of runs 1 and 7", test_metrics={})
    text = comparison_section(SimpleNamespace(test_per_class=20, seed=0, against_ensemble=7), run_a, ensemble,
                              y_true, a, b, list(CLASSES), 1.0)  # fmt: skip
    assert "## Runs 1 and 1 + 7 on the same series" in text
    assert "`python bench/crop.py --run 1 --against-ensemble 7 --test-per-class 20 --seed 0`" in text
    assert "run B = 1 + 7 (ensemble of runs 1 and 7, own test —)" in text
    for wrong in (["--against-ensemble", "7"], ["--run", "1", "--against", "2", "--against-ensemble", "7"],
                  ["--run", "1", "--ensemble-run", "7", "--against-ensemble", "7"]):  # fmt: skip
        with pytest.raises(SystemExit):
            main(wrong)


def test_the_tta_bench_scores_a_runs_own_test_split_with_each_mode(completed_runs, tiny_dataset, capsys):
    """bench/tta_split.py: one view reproduces the run's stored test figure (the images are prepared
    as the run trained on them), flip4 is paired with it on the same plots, and the style table
    covers every test plot (the tiny set is all team style)."""
    from bench.tta_split import main

    run = store.get_run(completed_runs["visual_cnn"])
    assert main([str(run.id), "--data", str(tiny_dataset), "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    rows = {cells[1]: cells for line in out.splitlines() if line.startswith(f"| {run.id} |")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}  # fmt: skip
    assert set(rows) == {"none", "flip4"}
    assert float(rows["none"][2]) == pytest.approx(run.test_metrics["macro_f1"], abs=1e-3)
    only_flip4, only_none = map(int, rows["flip4"][4].split(" / "))
    assert float(rows["flip4"][3].split()[0]) == pytest.approx(float(rows["flip4"][2]) - float(rows["none"][2]), abs=1e-3)
    assert only_flip4 + only_none <= 27 and "| team style | 27 |" in out and "| all | 27 |" in out
    with pytest.raises(SystemExit):
        main([str(run.id), "--data", str(tiny_dataset), "--modes", "rot8"])


def test_the_seeds_bench_pools_an_ab_over_runs_stored_per_seed(tmp_path, monkeypatch):
    """bench/seeds_ab.py: four stored runs (two seeds, recipes A and B) on the same test plots, one of
    them stored in another order; B fixes team-style plots in both seeds, so the pooled row finds it on
    the team group, both seeds point the same way, and the varied group does not move."""
    from backend.data.generate import generate_dataset
    from backend.data.series import CLASSES
    from bench.paired_by_style import TEAM, style_groups

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("RUNS_DB_URL", url)
    data = tmp_path / "mixed"
    generate_dataset(data, train_per_class=1, test_per_class=6, seed=4, style="mixed", workers=1)
    manifest = json.loads((data / "manifest.json").read_text())
    groups = style_groups(manifest)
    tests = [s for s in manifest["samples"] if s["split"] == "test"]
    y_true = np.array([CLASSES.index(s["class"]) for s in tests])
    team = np.array([groups[s["png"]] == TEAM for s in tests])
    assert 6 <= team.sum() <= len(tests) - 6

    def stored(pred, order) -> int:
        run_id = store.create_run(name="r", model="visual_cnn", config={}, dataset=str(data), status="completed",
                                  class_names=list(CLASSES))  # fmt: skip
        store.save_predictions(run_id, [{"item_hash": tests[i]["png"], "path": tests[i]["png"],
                                         "true_index": int(y_true[i]), "pred_index": int(pred[i])} for i in order])  # fmt: skip
        return run_id

    wrong = (y_true + 1) % len(CLASSES)
    rng = np.random.default_rng(0)
    runs = []
    for seed in range(2):
        misses = rng.random(len(tests)) < 0.2  # each seed's A misses its own fifth of the plots
        a = np.where(misses, wrong, y_true)
        b = np.where(misses & ~team, wrong, y_true)  # B gets every team plot right
        order = np.arange(len(tests)) if seed == 0 else rng.permutation(len(tests))
        runs += [stored(a, order), stored(b, order[::-1])]
    command = [sys.executable, "bench/seeds_ab.py", "--pair", str(runs[0]), str(runs[1]), "--pair", str(runs[2]),
               str(runs[3]), "--data", str(data), "--names", "old", "new", "--resamples", "200"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in done.stdout.splitlines() if line.startswith("| ")]
    rows = {row[0]: row for row in cells}
    assert f"runs {runs[0]}, {runs[1]}" in rows and f"runs {runs[2]}, {runs[3]}" in rows
    assert rows["all"][1] == str(len(tests)) and rows[TEAM][1] == str(int(team.sum()))
    assert rows[TEAM][8] == "yes" and all(float(v) > 0 for v in rows[TEAM][3].split(","))  # both seeds gain on team plots
    assert rows["varied"][3] == "+0.0, +0.0" and rows["varied"][6] == "0 / 0"  # and none elsewhere
    only_new = int(rows["all"][6].split(" / ")[1])
    assert rows["all"][6] == f"0 / {only_new}" and only_new > 0
    by_class = [rows[name] for name in CLASSES]  # per class: what B fixed, counted where it was fixed
    assert sum(int(row[1]) for row in by_class) == len(tests)
    assert sum(int(row[5].split(" / ")[1]) for row in by_class) == only_new
    assert all(row[5].startswith("0 / ") and float(row[3]) >= float(row[2]) for row in by_class)
    fixed = {CLASSES[i] for i in np.flatnonzero(np.bincount(y_true[team], minlength=len(CLASSES)))}
    assert any(float(rows[name][4]) > 0 for name in fixed)

    done = subprocess.run([*command[:2], "--pair", str(runs[0]), "999"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "run 999 has no stored test predictions" in done.stderr


def test_the_shared_errors_bench_finds_the_plots_every_run_misses(tmp_path, monkeypatch):
    """bench/shared_errors.py: three stored runs on the same generated test plots (one stored in
    another order). Planted: some plots all three runs miss, some two miss, some only one. The
    agreement counts, the averaged probabilities (right where one run errs, wrong where two do), the
    any-run-right bound, the shared-error table (with the manifest's sub-kinds) and the contact sheet
    follow from them; --at-least 3 keeps only the plots all three miss."""
    from PIL import Image

    from backend.data.generate import generate_dataset
    from backend.data.series import CLASSES

    monkeypatch.setenv("RUNS_DB_URL", f"sqlite:///{tmp_path / 'runs.db'}")
    data = tmp_path / "mixed"
    generate_dataset(data, train_per_class=1, test_per_class=4, seed=5, style="mixed", workers=1)
    tests = [s for s in json.loads((data / "manifest.json").read_text())["samples"] if s["split"] == "test"]
    n = len(tests)
    y_true = np.array([CLASSES.index(s["class"]) for s in tests])
    wrong = (y_true + 1) % len(CLASSES)
    rng = np.random.default_rng(1)
    misses_in = rng.choice([0, 1, 2, 3], size=n, p=[0.6, 0.15, 0.1, 0.15])  # how many runs miss each plot
    misses_in[:3] = [1, 2, 3]

    def stored(run_index: int, order) -> int:
        pred = np.where(misses_in > run_index, wrong, y_true)  # run k misses the plots missed by more than k runs
        probs = np.full((n, len(CLASSES)), 0.02)
        probs[np.arange(n), pred] = 1 - 0.02 * (len(CLASSES) - 1)
        run_id = store.create_run(name="r", model="visual_cnn", config={}, dataset=str(data), status="completed",
                                  class_names=list(CLASSES))  # fmt: skip
        store.save_predictions(run_id, [{"item_hash": tests[i]["png"], "path": tests[i]["png"], "true_index": int(y_true[i]),
                                         "pred_index": int(pred[i]), "probs": probs[i].tolist()} for i in order])  # fmt: skip
        return run_id

    runs = [stored(0, range(n)), stored(1, rng.permutation(n)), stored(2, range(n))]
    sheet = tmp_path / "sheet.png"
    command = [sys.executable, "bench/shared_errors.py", *map(str, runs), "--data", str(data), "--sheet", str(sheet),
               "--resamples", "50"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {cells[0]: cells for line in done.stdout.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip().strip("|").split("|")]]}  # fmt: skip
    counts = np.bincount(misses_in, minlength=4)
    assert rows["test plots"] == ["test plots", *map(str, counts)]
    assert rows["mean of the 3 runs' probabilities"][3] == str(counts[2] + counts[3])  # the majority decides
    assert rows["any run right (a bound, not a model)"][3] == str(counts[3])
    assert rows[str(runs[0])][3] == str(n - counts[0])  # run 1 misses every planted plot
    shared = counts[2] + counts[3]
    assert f"{shared} test plots" in done.stdout and "wrong in at least 2 of the 3 runs" in done.stdout
    table = [line for line in done.stdout.splitlines() if line.count("|") == 5 and line.split("|")[1].strip() in CLASSES]
    assert sum(int(line.split("|")[4]) for line in table) == shared
    first = tests[2]  # missed by all three: its class, sub-kind and the planted wrong class are in the table
    assert any(f"| {first['class']} | {first['subkind']} | {CLASSES[wrong[2]]} |" in line for line in table)
    by_length = [line for line in done.stdout.splitlines() if line.startswith("| ")
                 and re.fullmatch(r"\d+-\d+|\d+ or more", line.split("|")[1].strip())]
    assert sum(int(line.split("|")[2]) for line in by_length) == n
    with Image.open(sheet) as image:
        assert image.size == (300 * 6, 240 * -(-shared // 6))

    done = subprocess.run([*command[:5], "--at-least", "3"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"{counts[3]} test plots" in done.stdout
    plain = store.create_run(name="p", model="visual_cnn", config={}, dataset=str(data), status="completed",
                             class_names=list(CLASSES))  # fmt: skip
    store.save_predictions(plain, [{"item_hash": s["png"], "path": s["png"], "true_index": int(t), "pred_index": int(t)}
                                   for s, t in zip(tests, y_true, strict=True)])  # fmt: skip
    for args, message in (([str(runs[0]), str(plain)], f"run {plain} stored no probabilities"),
                          ([str(runs[0])], "two or more different runs"),
                          ([*map(str, runs), "--sheet", str(sheet)], "--sheet needs --data")):  # fmt: skip
        done = subprocess.run([sys.executable, "bench/shared_errors.py", *args], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr
