"""Every dashboard page driven by Streamlit's AppTest: with a run store filled by real tiny training
runs (``completed_runs``) and with an empty store, plus the interactions that matter: predicting an
uploaded PNG and CSV, generating a dataset, rejecting a bad training option, launching and
cancelling a run, and the images behind a confusion-matrix cell.

AppTest runs the real ``dashboard/Home.py`` router and page scripts in this process; a fragment's
``run_every`` timer never fires here (the browser test covers the live refresh).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from backend import config, store
from backend.data.series import CLASSES
from backend.lineage import dataset_fingerprint
from tests.fixtures.comparison import plant_run, planted_labels, with_errors

HOME = Path(__file__).resolve().parent.parent / "dashboard" / "Home.py"
PAGES = ("home", "data", "train", "compare", "class_metrics", "predict")
TIMEOUT = 180  # seconds per script run: the first Predict render imports torch and loads a model


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts with empty Streamlit caches (they are process-wide, like a server's)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def data_dir(tmp_path, monkeypatch, tiny_dataset) -> Path:
    """A DATA_DIR holding a copy of the session's tiny dataset as ``tiny``."""
    folder = tmp_path / "data"
    shutil.copytree(tiny_dataset, folder / "tiny")
    monkeypatch.setenv("DATA_DIR", str(folder))
    return folder


def open_page(page: str) -> AppTest:
    """Run the app, switch to ``page`` and run it; fail on any exception the page raised."""
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT)
    at.run()
    if page != "home":
        at.switch_page(f"../pages/{page}.py").run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at: AppTest) -> str:
    """Everything a person reads on the page, as one string (for content checks)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [i.value for i in at.info] + [w.value for w in at.warning] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


# --- every page, filled and empty ----------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_real_runs(page, completed_runs, data_dir):
    at = open_page(page)
    assert at.title, "every page has a title"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_empty_store_with_a_plain_message(page, empty_store):
    at = open_page(page)
    # Each page says what is missing rather than showing an empty frame.
    assert at.info or at.warning or at.caption, f"{page} shows no empty-state message"


def test_home_shows_best_run_of_each_model(completed_runs, data_dir):
    at = open_page("home")
    best = at.dataframe[0].value
    assert set(completed_runs) <= set(best["model"])
    runs_metric = next(m for m in at.metric if m.label == "Runs")
    assert int(runs_metric.value) >= len(completed_runs)
    datasets = next(m for m in at.metric if m.label == "Datasets")
    assert datasets.value == "1"


# --- Predict -------------------------------------------------------------------------------------


def test_predict_png_and_csv_and_a_bad_file(completed_runs, data_dir):
    at = open_page("predict")
    at.selectbox(key="predict_run").set_value(completed_runs["visual_cnn"]).run()
    png = next((data_dir / "tiny" / "test" / "mean_shift").glob("*.png"))
    csv = next((data_dir / "tiny" / "csv" / "test" / "volatility").glob("*.csv"))
    at.file_uploader(key="predict_files").set_value(
        [
            ("plot.png", png.read_bytes(), "image/png"),
            ("series.csv", csv.read_bytes(), "text/csv"),
            ("broken.png", b"this is not a png", "image/png"),
        ]
    ).run()
    assert not at.exception, [e.value for e in at.exception]

    results = at.dataframe[0].value
    assert list(results["file"]) == ["plot.png", "series.csv", "broken.png"]
    good = results[results["error"] == ""]
    assert len(good) == 2 and set(good["predicted"]) <= set(CLASSES)
    assert good["confidence"].between(0, 1).all()
    # The bad file's error is shown in place; the two good files each show their prediction.
    assert [e.value for e in at.error] == [results.loc[2, "error"]] and "broken.png" in results.loc[2, "error"]
    # A certain answer is a "Predicted" headline; an uncertain one a badge, a "Best guess" line and why.
    headlines = [m.value for m in at.metric if m.label == "Predicted"]
    guesses = [m.value.split("Best guess: ")[1].split(" (")[0] for m in at.markdown if "Best guess: " in m.value]
    assert sorted(headlines + guesses) == sorted(good["predicted"])
    assert len(guesses) == int(good["uncertain"].sum())
    assert len([w for w in at.warning if w.value.startswith("Uncertain: ")]) == len(guesses)
    assert at.get("download_button"), "the results table can be downloaded"


def test_predict_with_flip4_tta(completed_runs, data_dir):
    at = open_page("predict")
    at.selectbox(key="predict_run").set_value(completed_runs["vae_classifier"]).run()
    at.segmented_control(key="predict_tta").set_value("flip4").run()
    png = next((data_dir / "tiny" / "test" / "point_anomaly").glob("*.png"))
    at.file_uploader(key="predict_files").set_value(("p.png", png.read_bytes(), "image/png")).run()
    assert_clean(at)
    assert "TTA flip4" in texts(at)
    assert len(at.get("image")) == 2, "the VAE shows its reconstruction beside the classified image"


# --- Data ----------------------------------------------------------------------------------------


def test_data_page_shows_counts_and_generates_a_dataset(data_dir):
    at = open_page("data")
    assert at.selectbox(key="data_dataset").value == str(data_dir / "tiny")
    ratio = next(m for m in at.metric if m.label == "Imbalance ratio, train")
    assert ratio.value == "1.00"

    at.text_input(key="gen_name").set_value("made_here")
    at.radio(key="gen_class_set").set_value("five-class preset")
    at.radio(key="gen_mode").set_value("long-tail").run()
    at.number_input(key="gen_train").set_value(6)
    at.number_input(key="gen_test").set_value(2)
    at.number_input(key="gen_ratio").set_value(3.0)
    at.button(key="gen_submit").click().run()
    assert_clean(at)

    made = data_dir / "made_here"
    assert (made / "manifest.json").is_file()
    assert "Generated made_here" in texts(at)
    assert at.selectbox(key="data_dataset").value == str(made)  # the new dataset is selected
    ratio = next(m for m in at.metric if m.label == "Imbalance ratio, train")
    assert ratio.value == "3.00"  # long-tail 6 -> 2 images
    assert at.metric[0].value == "5"  # five-class preset


def test_data_generate_shows_validation_errors(data_dir):
    at = open_page("data")
    at.text_input(key="gen_name").set_value("bad_counts")
    at.number_input(key="gen_train").set_value(0)
    at.button(key="gen_submit").click().run()
    assert not at.exception
    assert any("train_per_class" in e.value for e in at.error), [e.value for e in at.error]
    assert not (data_dir / "bad_counts").exists()

    at.text_input(key="gen_name").set_value("../escape")
    at.number_input(key="gen_train").set_value(2)
    at.button(key="gen_submit").click().run()
    assert any("Name must be" in e.value for e in at.error)


def test_data_replace_refuses_a_folder_the_product_did_not_write(data_dir):
    foreign = data_dir / "webapp"
    (foreign / "src").mkdir(parents=True)
    (foreign / "manifest.json").write_text('{"name": "my-web-app"}')
    (foreign / "src" / "app.js").write_text("code")
    at = open_page("data")
    at.text_input(key="gen_name").set_value("webapp")
    at.number_input(key="gen_train").set_value(2)
    at.number_input(key="gen_test").set_value(1)
    at.checkbox(key="gen_replace").check()
    at.button(key="gen_submit").click().run()
    assert not at.exception
    assert any("Not generated" in e.value and "was not written by anomaly-workbench generate" in e.value
               for e in at.error), [e.value for e in at.error]
    assert (foreign / "src" / "app.js").read_text() == "code"
    assert sorted(p.name for p in data_dir.iterdir()) == ["tiny", "webapp"]


# --- Train ---------------------------------------------------------------------------------------


def test_train_form_has_every_option_and_rejects_a_bad_value(data_dir):
    from backend.training.config import FIELD_NAMES
    from dashboard.train_form import APPLIES

    at = open_page("train")
    at.selectbox(key="train_model").set_value("visual_cnn").run()
    keys = {w.key for w in at.get("number_input") + at.get("selectbox") + at.get("checkbox") + at.get("text_input")}
    missing = [  # options that apply only to some choices are checked in tests/test_review.py
        name
        for name in FIELD_NAMES
        if name not in {"model", "model_kwargs", *APPLIES} and f"train_visual_cnn_{name}" not in keys
    ]
    assert not missing, f"options without a widget: {missing}"
    # The model's recommended defaults are filled in (visual_cnn: adamw + onecycle).
    assert at.selectbox(key="train_visual_cnn_optimizer").value == "adamw"

    before = len(store.list_runs())
    at.number_input(key="train_visual_cnn_batch_size").set_value(1)
    at.button(key="train_launch").click().run()
    assert not at.exception
    assert any("batch_size must be at least 2" in e.value for e in at.error), [e.value for e in at.error]
    assert len(store.list_runs()) == before, "an invalid config queues nothing"


def test_train_form_offers_completed_runs_on_the_same_dataset_as_teachers(empty_store, data_dir):
    tiny = str((data_dir / "tiny").resolve())

    def run_row(status: str, dataset: str) -> int:
        run_id = store.create_run(name=status, model="series_cnn", config={"data": dataset}, dataset=dataset,
                                  status=status)  # fmt: skip
        store.update_run(run_id, checkpoint_path=str(data_dir / "best.pt"))
        return run_id

    teacher = run_row("completed", tiny)
    run_row("failed", tiny)
    run_row("completed", str(data_dir / "elsewhere"))
    second = run_row("completed", tiny)
    at = open_page("train")
    at.selectbox(key="train_model").set_value("visual_cnn").run()
    at.selectbox(key="train_visual_cnn_data").set_value(str(data_dir / "tiny")).run()
    picker = at.selectbox(key="train_visual_cnn_distill_from")
    assert len(picker.options) == 3 and picker.options[0] == "none (no teacher)", picker.options
    assert picker.options[1].startswith(f"#{second} completed · series_cnn on tiny"), picker.options
    assert picker.options[2].startswith(f"#{teacher} completed · series_cnn on tiny"), picker.options
    keys = {w.key for w in at.get("number_input")} | {w.key for w in at.selectbox}
    assert not keys & {"train_visual_cnn_distill_weight", "train_visual_cnn_distill_with"}, "no teacher: not drawn"
    picker.set_value(teacher).run()
    # The second teacher, averaged with the first, is chosen among the others.
    with_picker = at.selectbox(key="train_visual_cnn_distill_with")
    assert with_picker.options[0] == "none (one teacher)" and len(with_picker.options) == 2, with_picker.options
    assert with_picker.options[1].startswith(f"#{second} "), with_picker.options
    with_picker.set_value(second)
    at.number_input(key="train_visual_cnn_distill_weight").set_value(0.0)
    at.button(key="train_launch").click().run()
    assert not at.exception
    assert any("distill_weight must be in (0, 1]" in e.value for e in at.error), [e.value for e in at.error]
    assert len(store.list_runs()) == 4, "an invalid config queues nothing"


def test_train_launches_a_run_and_cancels_it(data_dir):
    at = open_page("train")
    at.selectbox(key="train_model").set_value("visual_cnn").run()
    for name, value in {"epochs": 200, "image_size": 32, "batch_size": 8, "workers": 0}.items():
        at.number_input(key=f"train_visual_cnn_{name}").set_value(value)
    at.selectbox(key="train_visual_cnn_data").set_value(str(data_dir / "tiny"))
    at.button(key="train_launch").click().run()
    assert_clean(at)
    run_id = int(store.list_runs()["id"].max())
    assert f"Run #{run_id} launched" in texts(at)
    try:
        # The live panel shows the new run with its own cancel button.
        at.button(key=f"cancel_{run_id}").click().run()
        assert not at.exception
        assert store.get_run(run_id).status == "cancelled"
    finally:
        from backend import runs

        if store.get_run(run_id).status in store.ACTIVE:
            runs.cancel(run_id)


# --- Compare and Class metrics -------------------------------------------------------------------


def test_compare_table_stars_nothing_and_diffs_config(completed_runs, data_dir):
    at = open_page("compare")
    at.multiselect(key="compare_runs").set_value([completed_runs["visual_cnn"], completed_runs["resnet50"]]).run()
    assert_clean(at)
    table = at.dataframe[0].value  # one row per run, sortable
    assert {"Accuracy", "Macro-F1", "Selected on", "Train-test gap", "Parameters", "Training time"} <= set(table)
    assert table.shape[0] == 2
    assert table["Train-test gap"].str.contains(r"\((?:mild|moderate|severe)\)").all()
    assert not table.apply(lambda column: column.str.contains("★")).any().any()
    diff = at.dataframe[1].value
    assert "model" in diff.index and "name" not in diff.index
    assert (diff.nunique(axis=1) > 1).all(), "the diff holds only options that differ"


def test_compare_identical_predictions_are_not_a_significant_difference(empty_store):
    y = planted_labels()
    a, b = plant_run(y, with_errors(y, 30), name="seed0"), plant_run(y, with_errors(y, 30), name="seed1")
    at = open_page("compare")
    at.multiselect(key="compare_runs").set_value([a, b]).run()
    assert_clean(at)
    assert "not a significant difference" in texts(at) and not at.success
    table = at.dataframe[0].value
    assert table["Macro-F1"].str.fullmatch(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]").all()
    assert set(table["Selected on"]) == {"validation"}


def test_compare_names_a_winner_only_for_a_planted_large_difference(empty_store):
    y = planted_labels()
    strong = plant_run(y, with_errors(y, 10), name="strong")
    weak = plant_run(y, with_errors(y, 90), name="weak", selection_split=None)  # stored before: selected on test
    noisy = plant_run(y, with_errors(y, 13), name="noisy")
    at = open_page("compare")
    at.multiselect(key="compare_runs").set_value([strong, weak, noisy]).run()
    assert_clean(at)
    winners = [s.value for s in at.success]
    assert len(winners) == 2 and all(
        w.endswith(f"run {strong} is significantly better") or w.endswith(f"run {noisy} is significantly better")
        for w in winners
    )
    assert f"run {strong} vs run {noisy}" in texts(at) and "not a significant difference" in texts(at)
    assert "test (figures optimistic)" in set(at.dataframe[0].value["Selected on"])
    assert "Selected on test" in texts(at)


def test_compare_config_diff_says_an_option_an_older_run_predates_is_not_recorded(empty_store):
    y = planted_labels()
    old = plant_run(y, y, name="old", config={"epochs": 1})
    new = plant_run(y, y, name="new", config={"epochs": 1, "distill_from": 7})
    at = open_page("compare")
    at.multiselect(key="compare_runs").set_value([old, new]).run()
    assert_clean(at)
    diff = at.dataframe[1].value
    assert list(diff.index) == ["distill_from"]
    assert list(diff.loc["distill_from"]) == ["(not recorded)", "7"]
    assert "stored before that option existed" in texts(at)


def test_compare_says_runs_on_different_items_are_not_comparable(empty_store):
    y = planted_labels()
    a = plant_run(y, y)
    b = plant_run(y, y, hashes=[f"elsewhere-{i}" for i in range(y.size)])
    at = open_page("compare")
    at.multiselect(key="compare_runs").set_value([a, b]).run()
    assert_clean(at)
    assert any("not comparable (different test items: 0 shared" in w.value for w in at.warning)


def test_home_and_class_metrics_show_intervals_and_calibration(empty_store):
    y = planted_labels()
    run_id = plant_run(y, with_errors(y, 30))
    at = open_page("home")
    best = at.dataframe[0].value
    assert best["test_macro_f1"].str.fullmatch(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]").all()
    assert list(best["selected_on"]) == ["validation"]

    at = open_page("class_metrics")
    at.selectbox(key="cm_run").set_value(run_id).run()
    assert_clean(at)
    per_class = at.dataframe[0].value
    assert per_class["f1_interval"].str.fullmatch(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]").all()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ECE (15 bins)"] == "0.030" and metrics["ECE before temperature"] == "0.080"
    assert "selected on validation" in texts(at)


def test_class_metrics_cell_shows_its_test_images(completed_runs, data_dir):
    run_id = completed_runs["visual_cnn"]
    predictions = pd.read_csv(config.run_dir(run_id) / "test_predictions.csv")
    first = predictions.iloc[0]
    expected = int(((predictions["true"] == first["true"]) & (predictions["predicted"] == first["predicted"])).sum())

    record = store.get_run(run_id)  # lineage: the run stored the fingerprint of the dataset it trained on
    assert record.dataset_fingerprint and record.dataset_fingerprint == dataset_fingerprint(record.dataset)

    at = open_page("class_metrics")
    at.selectbox(key="cm_run").set_value(run_id).run()
    assert len(at.dataframe[0].value) == len(CLASSES)
    # A click on a cell: the chart's selection state names it and the page reruns.
    at.session_state["cm_chart_test"] = {"selection": {"cell": [{"true": first["true"], "predicted": first["predicted"]}]}}
    at.run()
    assert_clean(at)
    assert f"**{expected}** image(s) of **{first['true']}** predicted as **{first['predicted']}**" in texts(at)
    assert len(at.get("image")) == min(expected, 12)
    at.toggle(key="cm_normalised").set_value(True).run()
    assert_clean(at)


def test_failed_run_and_run_without_checkpoint_are_explained(empty_store):
    failed = store.create_run(name="broken", model="visual_cnn", config={}, dataset="/nowhere/tiny", status="failed")
    store.update_run(failed, error="CUDA out of memory at epoch 3")
    done = store.create_run(
        name="no checkpoint", model="visual_cnn", config={}, dataset="/nowhere/tiny", status="completed"
    )
    store.update_run(done, best_val_f1=0.5, checkpoint_path="/nowhere/best.pt")

    at = open_page("home")
    at.switch_page("../pages/class_metrics.py").run()
    at.selectbox(key="cm_run").set_value(failed).run()
    assert not at.exception
    assert any("CUDA out of memory at epoch 3" in e.value for e in at.error)

    at.switch_page("../pages/predict.py").run()
    at.selectbox(key="predict_run").set_value(done).run()
    assert not at.exception
    assert any("has no checkpoint" in w.value for w in at.warning)


def test_class_metrics_opens_on_the_newest_completed_run_not_a_newer_failed_or_running_one(empty_store):
    older = store.create_run(name="older", model="visual_cnn", config={}, dataset="/nowhere/tiny", status="completed")
    done = store.create_run(name="done", model="visual_cnn", config={}, dataset="/nowhere/tiny", status="completed")
    failed = store.create_run(name="broken", model="visual_cnn", config={}, dataset="/nowhere/tiny", status="failed")
    store.update_run(failed, error="every image unreadable")
    store.create_run(name="training", model="visual_cnn", config={}, dataset="/nowhere/tiny", status="running")

    at = open_page("class_metrics")  # no error box: the failed run is not the one shown
    picker = at.selectbox(key="cm_run")
    assert picker.value == done and older < done
    assert len(picker.options) == 4, "failed and running runs stay in the list"
    picker.set_value(failed).run()
    assert any("every image unreadable" in e.value for e in at.error)


def test_a_broken_store_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNS_DB_URL", f"sqlite:///{tmp_path}")  # a folder, not a database file
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.error and at.error[0].value.startswith(f"the run store sqlite:///{tmp_path} cannot be used")


@pytest.mark.parametrize("page", ["data", "train", "compare", "class_metrics", "predict"])
def test_a_garbage_store_is_the_cli_message_on_every_page(page, tmp_path, monkeypatch):
    """A RUNS_DB_URL file of random bytes: every page shows the one line the CLI prints, no traceback."""
    garbage = tmp_path / "runs.db"
    garbage.write_bytes(bytes(range(256)) * 64)
    monkeypatch.setenv("RUNS_DB_URL", f"sqlite:///{garbage}")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "no-artifacts"))
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT).run()
    at.switch_page(f"../pages/{page}.py").run()
    assert not at.exception
    expected = f"the run store sqlite:///{garbage} cannot be used (file is not a database)"
    errors = [e.value for e in at.error]
    assert all(error.startswith(expected) for error in errors), errors
    if page != "data":  # the Data page never reads runs
        assert errors, "a page that reads runs showed no message for an unreadable store"
