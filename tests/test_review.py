"""Team review (issue 15): the click-through confusion matrix, lineage, and runs a team organises.

Real parts: a real SQLite store, real PNG files on disk whose sha256 the stored predictions carry,
Streamlit's AppTest running the real pages, and ``python -m backend`` in a subprocess.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from backend import lineage, store
from tests.fixtures.comparison import CLASSES

HOME = Path(__file__).resolve().parent.parent / "dashboard" / "Home.py"
TIMEOUT = 120


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def store_url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("RUNS_DB_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    store.init_db(url)
    return url


def write_dataset(root: Path, per_class: int = 4, seed: int = 0) -> list[tuple[str, int]]:
    """Tiny real PNGs under ``root/test/<class>/``; returns (relative path, class index) per file."""
    rng = np.random.default_rng(seed)
    files = []
    for c, name in enumerate(CLASSES):
        folder = root / "test" / name
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


@pytest.fixture
def reviewed_run(tmp_path, store_url) -> dict:
    """A completed run on a real PNG dataset (fingerprinted) with an evaluation on a second one."""
    own, other = tmp_path / "data" / "own", tmp_path / "other"
    own_files, other_files = write_dataset(own, seed=1), write_dataset(other, seed=2)
    run_id = store.create_run(
        name="reviewed", model="visual_cnn", config={"epochs": 1, "lr": 0.001}, dataset=str(own),
        status="completed", class_names=CLASSES,
    )  # fmt: skip
    store.update_run(run_id, best_val_f1=0.5, dataset_fingerprint=lineage.dataset_fingerprint(own))
    own_rows = prediction_rows(own, own_files, wrong={0, 1, 5})  # two mean_shift -> point_anomaly
    store.save_predictions(run_id, own_rows)
    store.save_class_metrics(run_id, per_class_rows())
    store.save_confusion(run_id, matrix_of(own_rows), CLASSES)
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
