"""Team review (issue 15): the click-through confusion matrix, lineage, and runs a team organises.

Real parts: a real SQLite store, real PNG files on disk whose sha256 the stored predictions carry,
Streamlit's AppTest running the real pages, and ``python -m backend`` in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from backend import lineage, store
from backend.data.plotarea import FINDER_VERSIONS, PLOT_AREA_VERSION
from tests.fixtures.comparison import CLASSES

HOME = Path(__file__).resolve().parent.parent / "dashboard" / "Home.py"
TIMEOUT = 120


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def write_dataset(root: Path, per_class: int = 4, seed: int = 0, split: str = "test") -> list[tuple[str, int]]:
    """Tiny real PNGs under ``root/<split>/<class>/``; returns (relative path, class index) per file."""
    rng = np.random.default_rng(seed)
    files = []
    for c, name in enumerate(CLASSES):
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = folder / f"{name}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
            files.append((path.relative_to(root).as_posix(), c))
    return files


def prediction_rows(root: Path, files: list[tuple[str, int]], wrong: set[int]) -> list[dict]:
    """Per-file predictions: files whose position is in ``wrong`` are predicted as the next class."""
    rows = []
    for i, (relative, t) in enumerate(files):
        p = (t + 1) % len(CLASSES) if i in wrong else t
        probs = [0.1] * len(CLASSES)
        probs[p] = 0.7
        probs[t] = probs[t] if t == p else 0.2
        rows.append({
            "item_hash": hashlib.sha256((root / relative).read_bytes()).hexdigest(), "path": relative,
            "true_index": t, "pred_index": p, "probs": probs, "confidence": max(probs),
        })  # fmt: skip
    return rows


def matrix_of(rows: list[dict]) -> np.ndarray:
    matrix = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    for row in rows:
        matrix[row["true_index"], row["pred_index"]] += 1
    return matrix


def per_class_rows() -> list[dict]:
    return [{"class_name": n, "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 4} for n in CLASSES]


def plant_run(own: Path, files: list[tuple[str, int]], name: str, config: dict, url: str | None = None) -> int:
    """A completed visual_cnn run on the written dataset ``own`` (fingerprinted as it is now), without
    training: its test predictions of ``files`` (two mean_shift files predicted as point_anomaly, one
    more mistake), per-class metrics and confusion matrix, stored as a finished run leaves them; its id."""
    run_id = store.create_run(
        name=name, model="visual_cnn", config=config, dataset=str(own), status="completed", class_names=CLASSES,
        url=url,
    )  # fmt: skip
    store.update_run(run_id, best_val_f1=0.5, dataset_fingerprint=lineage.dataset_fingerprint(own), url=url)
    rows = prediction_rows(own, files, wrong={0, 1, 5})  # two mean_shift -> point_anomaly
    store.save_predictions(run_id, rows, url=url)
    store.save_class_metrics(run_id, per_class_rows(), url=url)
    store.save_confusion(run_id, matrix_of(rows), CLASSES, url=url)
    return run_id


@pytest.fixture
def reviewed_run(tmp_path, empty_store) -> dict:
    """A completed run on a real PNG dataset (fingerprinted) with an evaluation on a second one."""
    own, other = tmp_path / "data" / "own", tmp_path / "other"
    own_files, other_files = write_dataset(own, seed=1), write_dataset(other, seed=2)
    write_dataset(own, per_class=2, seed=3, split="train")  # a dataset the Train page lists
    run_id = plant_run(own, own_files, "reviewed", {"epochs": 1, "lr": 0.001})
    other_rows = prediction_rows(other, other_files, wrong={4, 5, 6})  # three point_anomaly -> trend_shift
    evaluation_id = store.save_evaluation(
        run_id, dataset=str(other), metrics={"accuracy": 0.75, "macro_f1": 0.7}, per_class=per_class_rows(),
        matrix=matrix_of(other_rows), class_names=CLASSES,
    )  # fmt: skip
    store.save_predictions(run_id, other_rows, evaluation_id=evaluation_id)
    return {"run_id": run_id, "evaluation_id": evaluation_id, "own": own, "other": other,
            "own_files": own_files, "other_files": other_files}  # fmt: skip


def open_class_metrics(run_id: int) -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("../pages/class_metrics.py").run()
    at.selectbox(key="cm_run").set_value(run_id).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, key: str, true: str, predicted: str) -> AppTest:
    """What a click on a cell does: the chart's selection state names the cell, and the page reruns."""
    at.session_state[key] = {"selection": {"cell": [{"true": true, "predicted": predicted}]}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def gallery_names(at: AppTest) -> set[str]:
    """File names the gallery shows (each image's bold title line)."""
    return {m.value.split("**")[1] for m in at.markdown if m.value.startswith("**") and ".png" in m.value}


def test_a_click_on_a_cell_shows_exactly_its_files_on_the_test_split_and_an_evaluation(reviewed_run):
    at = open_class_metrics(reviewed_run["run_id"])
    # Before any click the most confused cell is shown: mean_shift predicted as point_anomaly (2 files).
    assert gallery_names(at) == {"mean_shift_0.png", "mean_shift_1.png"}
    assert len(at.get("image")) == 2

    click(at, "cm_chart_test", "trend_shift", "trend_shift")
    assert gallery_names(at) == {f"trend_shift_{i}.png" for i in range(4)}
    assert any("P(trend_shift) = 70.0%" in m.value and "top-3: trend_shift 70%" in m.value for m in at.markdown)

    evaluation_id = reviewed_run["evaluation_id"]
    at.selectbox(key="cm_target").set_value(evaluation_id).run()
    assert not at.exception
    click(at, f"cm_chart_{evaluation_id}", "point_anomaly", "trend_shift")
    assert gallery_names(at) == {f"point_anomaly_{i}.png" for i in range(3)}
    shown = " ".join(m.value for m in at.markdown)
    assert "**3** image(s) of **point_anomaly** predicted as **trend_shift**" in shown
    assert "P(point_anomaly) = 20.0%" in shown  # the true class's probability, not the confidence

    at.toggle(key="cm_normalised").set_value(True).run()  # the row-normalised view keeps the selection
    assert not at.exception and gallery_names(at) == {f"point_anomaly_{i}.png" for i in range(3)}


def test_a_run_whose_dataset_was_replaced_reports_the_change(reviewed_run):
    own = reviewed_run["own"]
    assert lineage.check_dataset(own, store.get_run(reviewed_run["run_id"]).dataset_fingerprint).state == "same"
    shutil.rmtree(own)
    write_dataset(own, seed=99)  # same names, same sizes or not: other images
    (own / "test" / "mean_shift" / "mean_shift_4.png").write_bytes(
        (own / "test" / "mean_shift" / "mean_shift_0.png").read_bytes()
    )

    check = lineage.check_dataset(own, store.get_run(reviewed_run["run_id"]).dataset_fingerprint)
    assert check.state == "changed" and not check.usable
    at = open_class_metrics(reviewed_run["run_id"])
    assert any("changed since this run trained on it" in w.value for w in at.warning)
    assert not gallery_names(at), "no other images are shown behind an old run's cells"


def test_replaced_files_of_an_evaluation_are_not_shown(reviewed_run):
    other = reviewed_run["other"]
    Image.new("RGB", (32, 32), "white").save(other / "test" / "point_anomaly" / "point_anomaly_0.png")
    at = open_class_metrics(reviewed_run["run_id"])
    at.selectbox(key="cm_target").set_value(reviewed_run["evaluation_id"]).run()
    click(at, f"cm_chart_{reviewed_run['evaluation_id']}", "point_anomaly", "trend_shift")
    assert gallery_names(at) == {"point_anomaly_1.png", "point_anomaly_2.png"}
    assert any("no longer the files that were predicted on" in w.value for w in at.warning)


def test_a_run_from_before_stored_predictions_shows_files_from_its_csv(reviewed_run):
    from backend import config

    own = reviewed_run["own"]
    run_id = store.create_run(
        name="old", model="visual_cnn", config={}, dataset=str(own), status="completed", class_names=CLASSES
    )
    rows = prediction_rows(own, reviewed_run["own_files"], wrong={0, 1, 5})
    store.save_class_metrics(run_id, per_class_rows())
    store.save_confusion(run_id, matrix_of(rows), CLASSES)
    config.run_dir(run_id).mkdir(parents=True)
    pd.DataFrame({
        "file": [str(own / r["path"]) for r in rows], "true": [CLASSES[r["true_index"]] for r in rows],
        "predicted": [CLASSES[r["pred_index"]] for r in rows], "confidence": [r["confidence"] for r in rows],
        **{f"prob_{name}": [r["probs"][i] for r in rows] for i, name in enumerate(CLASSES)},
    }).to_csv(config.run_dir(run_id) / "test_predictions.csv", index=False)  # fmt: skip
    at = open_class_metrics(run_id)
    assert gallery_names(at) == {"mean_shift_0.png", "mean_shift_1.png"}
    assert any("P(mean_shift) = 20.0%" in m.value for m in at.markdown)


def test_fingerprint_of_a_folder_without_manifest_follows_names_and_sizes(tmp_path):
    files = write_dataset(tmp_path / "d")
    first = lineage.dataset_fingerprint(tmp_path / "d")
    assert first.startswith("files:") and first == lineage.dataset_fingerprint(tmp_path / "d")
    (tmp_path / "d" / files[0][0]).unlink()
    assert lineage.dataset_fingerprint(tmp_path / "d") != first
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text('{"samples": []}')
    assert lineage.dataset_fingerprint(tmp_path / "m").startswith("manifest:")
    assert lineage.dataset_fingerprint(tmp_path / "missing") is None


# --- runs a team organises ---------------------------------------------------------------------------


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT)
    at.run()
    if page != "home":
        at.switch_page(f"../pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend", *args], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )


def test_names_notes_and_tags_survive_a_reload_and_filter(reviewed_run):
    run_id = reviewed_run["run_id"]
    other = store.create_run(name="other", model="resnet50", config={}, dataset="/elsewhere/x", status="failed")
    at = open_page("home")
    at.selectbox(key="home_organise_run").set_value(run_id).run()
    at.text_input(key=f"home_organise_name_{run_id}").set_value("Baseline CNN, seed 0")
    at.multiselect(key=f"home_organise_tags_{run_id}").set_value(["baseline", "paper"])
    at.text_area(key=f"home_organise_notes_{run_id}").set_value("Confuses **mean_shift** with point_anomaly.")
    at.button(key="home_organise_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    # A reload (a new session; another process below) reads what was saved.
    st.cache_data.clear()
    at = open_page("home")
    at.selectbox(key="home_organise_run").set_value(run_id).run()
    assert at.text_input(key=f"home_organise_name_{run_id}").value == "Baseline CNN, seed 0"
    assert at.multiselect(key=f"home_organise_tags_{run_id}").value == ["baseline", "paper"]
    assert any("Confuses **mean_shift**" in m.value for m in at.markdown)
    assert widgets_label(run_id).startswith(f"#{run_id} Baseline CNN, seed 0 · visual_cnn on ")  # pickers show the name
    listed = json.loads(run_cli("runs", "list", "--tag", "paper", "--json").stdout)
    assert [(r["id"], r["name"], r["tags"]) for r in listed] == [
        (run_id, "Baseline CNN, seed 0", ["baseline", "paper"])
    ]

    # The shared filter: by tag on Home, by status on Train, by model on Compare.
    at.multiselect(key="home_filter_tags").set_value(["paper"]).run()
    assert list(at.dataframe[-1].value["id"]) == [run_id]
    at = open_page("train")
    at.multiselect(key="train_filter_status").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["id"]) == [other]
    store.update_run(run_id, current_epoch=1)
    store.update_run(other, current_epoch=1)
    st.cache_data.clear()  # the run list is cached for a few seconds, like a server's
    at = open_page("compare")
    at.multiselect(key="compare_filter_model").set_value(["visual_cnn"]).run()
    assert set(at.multiselect(key="compare_runs").options) == {widgets_label(run_id)}


def widgets_label(run_id: int) -> str:
    from dashboard.widgets import run_label

    return run_label(store.get_run(run_id))


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``python -m backend ARGS`` in this process (the error boundary included): code, stdout, stderr."""
    from backend.__main__ import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out.strip(), out.err.strip()


def test_cli_verbs_change_runs_and_refuse_bad_input(reviewed_run, capsys):
    run_id = str(reviewed_run["run_id"])
    assert cli(capsys, "runs", "rename", run_id, "renamed")[0] == 0
    assert cli(capsys, "runs", "note", run_id, "# heading\nline")[0] == 0
    code, out, _ = cli(capsys, "runs", "tag", run_id, "--add", "Baseline", "--add", "gpu", "--remove", "old")
    assert code == 0 and out == f"run {run_id} tags: baseline, gpu"
    record = store.get_run(int(run_id))
    assert (record.name, record.notes, store.run_tags(int(run_id))) == (
        "renamed",
        "# heading\nline",
        ["baseline", "gpu"],
    )
    assert cli(capsys, "runs", "tag", run_id, "--remove", "gpu")[1] == f"run {run_id} tags: baseline"

    for args in (("rename", "999", "x"), ("note", "999", "x"), ("tag", "999", "--add", "x")):
        assert cli(capsys, "runs", *args) == (2, "", "error: run 999 not found")
    code, _, err = cli(capsys, "runs", "tag", run_id, "--add", "two words")
    assert code == 2 and "has characters a tag cannot have" in err
    assert cli(capsys, "runs", "rename", run_id, "   ")[0] == 2
    assert store.get_run(int(run_id)).name == "renamed", "a refused rename changes nothing"


def test_clone_into_the_form_prefills_the_train_form(reviewed_run, tmp_path):
    run_id = reviewed_run["run_id"]
    store.update_run(
        run_id,
        config={"model": "visual_cnn", "data": str(reviewed_run["own"]), "lr": 0.0123, "epochs": 7,
                "optimizer": "sgd", "momentum": 0.8, "name": "seed run"},
    )  # fmt: skip
    at = open_page("home")
    at.selectbox(key="home_organise_run").set_value(run_id).run()
    at.button(key="home_organise_clone").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="train_model").value == "visual_cnn"
    assert at.number_input(key="train_visual_cnn_lr").value == pytest.approx(0.0123)
    assert at.number_input(key="train_visual_cnn_epochs").value == 7
    assert at.selectbox(key="train_visual_cnn_optimizer").value == "sgd"
    assert at.number_input(key="train_visual_cnn_momentum").value == pytest.approx(0.8)
    assert at.text_input(key="train_visual_cnn_name").value == "seed run (clone)"
    at.number_input(key="train_visual_cnn_epochs").set_value(9).run()  # a rerun keeps the cloned values
    assert at.number_input(key="train_visual_cnn_lr").value == pytest.approx(0.0123)


def test_train_form_shows_only_the_options_that_apply(reviewed_run):
    at = open_page("train")
    at.selectbox(key="train_model").set_value("visual_cnn").run()

    def shown(name: str) -> bool:
        return any(w.key == f"train_visual_cnn_{name}" for w in at.get("number_input") + at.get("checkbox"))

    at.selectbox(key="train_visual_cnn_optimizer").set_value("adamw").run()
    at.selectbox(key="train_visual_cnn_scheduler").set_value("onecycle").run()
    at.selectbox(key="train_visual_cnn_loss").set_value("ce").run()
    assert not any(shown(n) for n in ("momentum", "nesterov", "plateau_factor", "warmup_epochs", "gamma", "tau"))
    at.selectbox(key="train_visual_cnn_optimizer").set_value("sgd").run()
    assert shown("momentum") and shown("nesterov")
    at.selectbox(key="train_visual_cnn_scheduler").set_value("plateau").run()
    assert shown("plateau_factor") and shown("plateau_patience") and not shown("warmup_epochs")
    at.selectbox(key="train_visual_cnn_scheduler").set_value("cosine").run()
    assert shown("warmup_epochs") and not shown("plateau_factor")
    at.selectbox(key="train_visual_cnn_loss").set_value("focal").run()
    assert shown("gamma") and not shown("tau") and not shown("beta")
    # the plot-area finder only matters while images are cropped to their axes
    finders = [w for w in at.selectbox if w.key == "train_visual_cnn_finder"]
    assert finders and finders[0].value == PLOT_AREA_VERSION and finders[0].options == [str(v) for v in FINDER_VERSIONS]
    resizes = [w for w in at.selectbox if w.key == "train_visual_cnn_resize"]
    assert resizes and resizes[0].value == "bilinear" and resizes[0].options == ["bilinear", "ink"]
    at.selectbox(key="train_visual_cnn_crop").set_value("none").run()
    assert not any(w.key == "train_visual_cnn_finder" for w in at.selectbox)
    assert at.button(key="train_launch").label == "Launch run"


def test_compare_warns_about_different_datasets_and_offers_csv(reviewed_run):
    run_id = reviewed_run["run_id"]
    twin = store.create_run(
        name="twin", model="resnet50", config={"epochs": 2}, dataset=str(reviewed_run["other"]), status="completed",
        class_names=CLASSES,
    )  # fmt: skip
    store.update_run(twin, best_val_f1=0.4, current_epoch=1)
    store.update_run(run_id, current_epoch=1)
    at = open_page("compare")
    at.multiselect(key="compare_runs").set_value([run_id, twin]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("trained on different datasets (own and other)" in w.value for w in at.warning)
    table = at.dataframe[0].value
    assert table.shape[0] == 2 and "Macro-F1" in table
    downloads = [d for d in at.get("download_button")]
    assert len(downloads) >= 2
