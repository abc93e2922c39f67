"""Dataset generation: layout, manifest, determinism, styles, CSV round trip, imbalance, CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.config import REPO_ROOT
from backend.data.generate import GENERATOR, ReplaceRefused, generate_dataset, plan_counts
from backend.data.render import render_series
from backend.data.series import CLASSES, FIVE_CLASS_PRESET, SUBKINDS

SMALL = (48, 36)
FOUR = ["mean_shift", "point_anomaly", "variance_shift", "volatility"]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["timestamp", "value"]
    return [r[0] for r in rows[1:]], np.array([float(r[1]) for r in rows[1:]])


# -- layout and manifest (on the shared fixture) -------------------------------------------------


def test_tiny_dataset_has_the_imagefolder_layout_csvs_and_a_manifest(tiny_dataset):
    manifest = _manifest(tiny_dataset)
    assert manifest["classes"] == list(CLASSES)
    assert manifest["counts"] == {"train": dict.fromkeys(CLASSES, 6), "test": dict.fromkeys(CLASSES, 3)}
    assert manifest["seed"] == 0 and manifest["options"]["size"] == [96, 72]
    for split, per_class in (("train", 6), ("test", 3)):
        for class_name in CLASSES:
            assert len(list((tiny_dataset / split / class_name).glob("*.png"))) == per_class
            assert len(list((tiny_dataset / "csv" / split / class_name).glob("*.csv"))) == per_class
    assert len(manifest["samples"]) == 81
    for sample in manifest["samples"]:
        assert sample["subkind"] in SUBKINDS[sample["class"]]
        assert Path(sample["png"]).parts[:2] == (sample["split"], sample["class"])
        assert (tiny_dataset / sample["png"]).is_file() and (tiny_dataset / sample["csv"]).is_file()
        assert "location" in sample["params"] and sample["params"]["subkind"] == sample["subkind"]
        assert _pixels(tiny_dataset / sample["png"]).shape == (72, 96, 3)
    assert not [p for p in tiny_dataset.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_train_and_test_never_share_a_series(tiny_dataset):
    digests = {split: {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tiny_dataset / "csv" / split).rglob("*.csv")}
               for split in ("train", "test")}
    assert len(digests["train"]) == 54 and len(digests["test"]) == 27
    assert not digests["train"] & digests["test"]


def test_csv_has_iso_timestamps_at_a_fixed_frequency(tiny_dataset):
    sample = _manifest(tiny_dataset)["samples"][0]
    stamps, values = _read_csv(tiny_dataset / sample["csv"])
    times = np.array(stamps, dtype="datetime64[s]")
    assert len(set(np.diff(times).tolist())) == 1
    assert len(values) == sample["params"]["length"]
    assert stamps[0] == sample["params"]["timestamps"]["start"]


# -- determinism --------------------------------------------------------------------------------


def test_same_seed_same_bytes_in_one_process_or_a_pool(tmp_path):
    options = {"train_per_class": 4, "test_per_class": 4, "classes": FOUR, "size": SMALL}
    serial = generate_dataset(tmp_path / "serial", seed=5, workers=1, **options)
    pooled = generate_dataset(tmp_path / "pooled", seed=5, workers=2, **options)
    assert serial == pooled
    assert _files(tmp_path / "serial") == _files(tmp_path / "pooled")
    other = generate_dataset(tmp_path / "other", seed=6, workers=1, **options)
    assert other["samples"][0]["params"] != serial["samples"][0]["params"]


def test_a_class_gets_the_same_series_whichever_classes_are_generated_with_it(tmp_path):
    few = generate_dataset(tmp_path / "few", train_per_class=2, test_per_class=1, seed=3,
                           classes=["mean_shift", "volatility"], size=SMALL, workers=1)
    more = generate_dataset(tmp_path / "more", train_per_class=2, test_per_class=1, seed=3,
                            classes=FOUR, size=SMALL, workers=1)
    pick = {s["id"]: s["params"] for s in more["samples"]}
    assert all(pick[s["id"]] == s["params"] for s in few["samples"])


def test_varied_style_is_deterministic_and_varies_sizes_and_backgrounds(tmp_path, tiny_dataset_varied):
    options = {"train_per_class": 1, "test_per_class": 2, "classes": ["mean_shift", "trend_shift"],
               "style": "varied", "workers": 1}
    generate_dataset(tmp_path / "a", seed=9, **options)
    generate_dataset(tmp_path / "b", seed=9, **options)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")

    manifest = _manifest(tiny_dataset_varied)
    images = [_pixels(tiny_dataset_varied / s["png"]) for s in manifest["samples"]]
    assert len({image.shape for image in images}) >= 10
    corners = {tuple(int(v) for v in image[0, 0]) for image in images}
    assert len(corners) >= 3 and any(max(c) < 80 for c in corners) and (255, 255, 255) in corners
    assert all(s["style"]["theme"] for s in manifest["samples"])


def test_mixed_style_draws_some_plots_in_team_style_and_the_rest_varied(tmp_path):
    options = {"train_per_class": 6, "test_per_class": 2, "classes": ["mean_shift", "point_anomaly"],
               "style": "mixed", "workers": 1, "size": None}
    manifest = generate_dataset(tmp_path / "a", seed=4, **options)
    generate_dataset(tmp_path / "b", seed=4, **options)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    shapes = [_pixels(tmp_path / "a" / s["png"]).shape for s in manifest["samples"]]
    team = sum(shape == (600, 800, 3) for shape in shapes)
    assert 0 < team < len(shapes), shapes


# -- team style and the CSV prediction path ---------------------------------------------------------


def test_team_style_csv_round_trip_renders_the_same_pixels(tmp_path):
    manifest = generate_dataset(tmp_path / "team", train_per_class=1, test_per_class=1, seed=2,
                                classes=["contextual_anomaly", "stochastic_trend"], workers=1)
    for sample in manifest["samples"]:
        png = _pixels(tmp_path / "team" / sample["png"])
        assert png.shape == (600, 800, 3) and (png[0, 0] == 255).all()
        _, values = _read_csv(tmp_path / "team" / sample["csv"])
        assert np.array_equal(render_series(values), png), sample["id"]


# -- class counts ---------------------------------------------------------------------------------


def test_longtail_decays_geometrically_in_class_order():
    counts = plan_counts(CLASSES, 100, 20, "longtail:10")
    train = list(counts["train"].values())
    assert train[0] == 100 and train[-1] == 10 and train == sorted(train, reverse=True)
    assert list(counts["test"].values())[-1] == 2
    assert plan_counts(["a", "b"], 3, 1, "longtail:100")["test"] == {"a": 1, "b": 1}


def test_custom_counts_scale_test_in_proportion():
    counts = plan_counts(FOUR, 40, 20, "counts:mean_shift=10, volatility=80")
    assert counts["train"] == {"mean_shift": 10, "point_anomaly": 40, "variance_shift": 40, "volatility": 80}
    assert counts["test"] == {"mean_shift": 5, "point_anomaly": 20, "variance_shift": 20, "volatility": 40}


def test_val_per_class_plans_a_third_split_shaped_like_test():
    counts = plan_counts(FOUR, 40, 20, "counts:mean_shift=10, volatility=80", val_per_class=10)
    assert counts["val"] == {"mean_shift": 2, "point_anomaly": 10, "variance_shift": 10, "volatility": 20}
    assert "val" not in plan_counts(FOUR, 40, 20)
    with pytest.raises(ValueError, match="val_per_class must be a whole number >= 0; got -1"):
        plan_counts(FOUR, 40, 20, val_per_class=-1)


def test_generated_files_follow_the_imbalance(tmp_path):
    generate_dataset(tmp_path / "lt", train_per_class=4, test_per_class=2, seed=0, imbalance="longtail:4",
                     classes=["mean_shift", "point_anomaly", "volatility"], size=SMALL, workers=1)
    found = {c: len(list((tmp_path / "lt" / "train" / c).glob("*.png"))) for c in ("mean_shift", "point_anomaly", "volatility")}
    assert found == {"mean_shift": 4, "point_anomaly": 2, "volatility": 1}
    assert _manifest(tmp_path / "lt")["counts"]["train"] == found


@pytest.mark.parametrize(("imbalance", "message"), [
    ("longtail:0.5", "longtail ratio must be a number >= 1"),
    ("longtail:x", "longtail needs a number"),
    ("counts:mean_shift=0", "count for mean_shift must be >= 1"),
    ("counts:spikes=3", "counts names class 'spikes', which is not being generated"),
    ("counts:mean_shift", "counts needs name=N"),
    ("zipf:2", "unknown imbalance mode 'zipf'; choose one of: balanced, counts, longtail"),
])
def test_bad_imbalance_says_what_to_change(imbalance, message):
    with pytest.raises(ValueError) as error:
        plan_counts(FOUR, 10, 5, imbalance)
    assert message in str(error.value)


# -- options, folders, progress -------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"classes": ["mean_shift", "spikes"]}, "unknown class(es) spikes; choose from: collective_anomaly"),
    ({"classes": ["mean_shift"]}, "at least 2 classes"),
    ({"train_per_class": 0}, "train_per_class must be a whole number >= 1"),
    ({"seed": -1}, "seed must be a whole number >= 0"),
    ({"style": "sketchy"}, "unknown render style 'sketchy'; choose one of: mixed, team, varied"),
    ({"size": (5, 5)}, "each 16-4096"),
    ({"length": 20}, "length must be a whole number >= 50"),
    ({"difficulty": -1.0}, "difficulty must be a positive number"),
    ({"workers": 0}, "workers must be a whole number >= 1"),
    ({"subkinds": {"trend_shift": ["onset"]}}, "sub-kinds given for class(es) not being generated: trend_shift"),
])
def test_bad_options_fail_before_writing_anything(tmp_path, options, message):
    arguments = {"train_per_class": 2, "test_per_class": 1, "seed": 0, "classes": FOUR, **options}
    with pytest.raises(ValueError) as error:
        generate_dataset(tmp_path / "out", **arguments)
    assert message in str(error.value)
    assert not list(tmp_path.iterdir())


def test_refuses_a_folder_it_did_not_make_and_replaces_one_it_did(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty and holds no manifest.json"):
        generate_dataset(tmp_path / "mine", train_per_class=1, test_per_class=1, seed=0, classes=FOUR)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        generate_dataset(tmp_path / "a_file", train_per_class=1, test_per_class=1, seed=0, classes=FOUR)

    out = tmp_path / "generated"
    generate_dataset(out, train_per_class=3, test_per_class=1, seed=0, classes=FOUR, size=SMALL, workers=1)
    generate_dataset(out, train_per_class=1, test_per_class=1, seed=1, classes=FOUR[:2], size=SMALL, workers=1)
    assert sorted(p.name for p in (out / "train").iterdir()) == FOUR[:2]
    assert len(list(out.rglob("*.png"))) == 4 and _manifest(out)["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "generated", "mine"]


# -- replacing a folder: only what generate wrote, swapped in whole ---------------------------------


def _small(out: Path, seed: int = 0, **options) -> dict:
    return generate_dataset(out, train_per_class=2, test_per_class=1, seed=seed, classes=FOUR[:2], size=SMALL,
                            workers=1, **options)


def test_manifest_carries_the_generator_signature(tmp_path):
    manifest = _small(tmp_path / "d")
    assert manifest["generator"] == GENERATOR == "anomaly-workbench" and manifest["format_version"] == 2
    assert _manifest(tmp_path / "d") == manifest


def test_a_dataset_of_the_last_release_is_replaced_but_a_foreign_generator_is_not(tmp_path):
    out = tmp_path / "old"
    manifest = _small(out)
    manifest.update(format_version=1, generator="anomaly-workbench synthetic series (backend.data.generate)")
    (out / "manifest.json").write_text(json.dumps(manifest))  # exactly what the last release wrote
    _small(out, seed=7)
    assert _manifest(out)["seed"] == 7 and _manifest(out)["generator"] == GENERATOR

    manifest = _manifest(out) | {"generator": "someone else's tool"}
    (out / "manifest.json").write_text(json.dumps(manifest))
    before = _files(out)
    with pytest.raises(ReplaceRefused, match='no "generator": "anomaly-workbench" signature'):
        _small(out, seed=8)
    assert _files(out) == before


@pytest.mark.parametrize(("extra", "shown"), [
    ("notes.txt", "notes.txt"), ("train/mean_shift/mine.png", "train/mean_shift/mine.png"),
    ("csv/train/mine.csv", "csv/train/mine.csv"), ("src/app.js", "src/"), (".git/HEAD", ".git/"),
    ("test/point_anomaly/deeper/x.png", "test/point_anomaly/deeper/"), ("val/mean_shift/x.png", "val/"),
])
def test_a_generated_folder_holding_a_user_file_is_refused_and_kept(tmp_path, extra, shown):
    out = tmp_path / "gen"
    _small(out)
    (out / extra).parent.mkdir(parents=True, exist_ok=True)
    (out / extra).write_text("the user's")
    before = _files(out)
    with pytest.raises(ReplaceRefused) as error:
        _small(out, seed=1)
    assert f"holds 1 item(s) generate did not write ({shown})" in str(error.value)
    assert "move them out of it first, or generate into a new folder" in str(error.value)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen"]  # no staging left


def test_a_generated_folder_that_lost_some_images_is_still_replaced(tmp_path):
    out = tmp_path / "gen"
    manifest = _small(out)
    (out / manifest["samples"][0]["png"]).unlink()
    _small(out, seed=3)
    assert _manifest(out)["seed"] == 3 and len(list(out.rglob("*.png"))) == 6


def test_a_file_added_while_generating_stops_the_swap(tmp_path):
    out = tmp_path / "gen"
    _small(out)
    before = _files(out)

    def user_writes_a_file(done: int, total: int) -> None:
        (out / "results.xlsx").write_text("written meanwhile")

    with pytest.raises(ReplaceRefused, match="results.xlsx"):
        _small(out, seed=1, progress=user_writes_a_file)
    assert _files(out) == before | {"results.xlsx": b"written meanwhile"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen"]


def test_without_an_atomic_exchange_a_failed_swap_puts_the_old_dataset_back(tmp_path, monkeypatch):
    from backend.data import generate

    out = tmp_path / "gen"
    _small(out)
    monkeypatch.setattr(generate, "_exchange", lambda a, b: False)  # a filesystem without RENAME_EXCHANGE
    _small(out, seed=2)
    assert _manifest(out)["seed"] == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["gen"]

    before = _files(out)
    rename = os.replace

    def disk_full_on_the_second_rename(source, target):
        if Path(source).name.startswith(".gen.partial-"):
            raise OSError(28, "No space left on device")
        rename(source, target)

    monkeypatch.setattr(generate.os, "replace", disk_full_on_the_second_rename)
    with pytest.raises(OSError, match="No space left"):
        _small(out, seed=3)
    assert _files(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["gen"]


def test_a_symlinked_output_is_refused(tmp_path):
    _small(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ReplaceRefused, match="symbolic link"):
        _small(tmp_path / "link", seed=1)
    assert _manifest(tmp_path / "real")["seed"] == 0


def test_subkinds_restrict_what_is_drawn(tmp_path):
    manifest = generate_dataset(tmp_path / "held", train_per_class=4, test_per_class=1, seed=0, classes=FOUR,
                                subkinds={"mean_shift": ["ramp_up"]}, size=SMALL, workers=1)
    assert {s["subkind"] for s in manifest["samples"] if s["class"] == "mean_shift"} == {"ramp_up"}
    assert manifest["options"]["subkinds"] == {"mean_shift": ["ramp_up"]}


def test_progress_reports_every_sample_up_to_the_total(tmp_path):
    calls: list[tuple[int, int]] = []
    generate_dataset(tmp_path / "p", train_per_class=2, test_per_class=1, seed=0, classes=FOUR, size=SMALL,
                     workers=1, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 12) for k in range(1, 13)]


# -- the command line, as a real subprocess ---------------------------------------------------------


def _cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend", "generate", *arguments], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=240)


def test_cli_writes_a_dataset_with_a_preset(tmp_path):
    result = _cli("--out", str(tmp_path / "five"), "--train-per-class", "2", "--test-per-class", "1",
                  "--seed", "4", "--preset", "five", "--size", "48x36", "--difficulty", "1.5",
                  "--length", "120", "--workers", "1")
    assert result.returncode == 0, result.stderr
    manifest = _manifest(tmp_path / "five")
    assert manifest["classes"] == sorted(FIVE_CLASS_PRESET)
    assert {s["params"]["length"] for s in manifest["samples"]} == {120}
    assert manifest["options"]["difficulty"] == 1.5 and "wrote 10 train and 5 test plots" in result.stdout


def test_cli_val_per_class_writes_a_val_folder_that_training_scans_as_validation(tmp_path):
    from backend.data.dataset import drop_cross_split_duplicates, scan_dataset

    options = ["--train-per-class", "2", "--test-per-class", "1", "--seed", "4", "--classes", ",".join(FOUR),
               "--size", "48x36", "--length", "120", "--workers", "1"]  # fmt: skip
    result = _cli("--out", str(tmp_path / "three"), "--val-per-class", "2", *options)
    assert result.returncode == 0, result.stderr
    assert "wrote 8 train, 8 val and 4 test plots" in result.stdout
    assert _manifest(tmp_path / "three")["counts"]["val"] == dict.fromkeys(FOUR, 2)
    info = drop_cross_split_duplicates(scan_dataset(tmp_path / "three", val_fraction=0.15))
    assert info.val_source == "folder" and info.counts("val") == dict.fromkeys(FOUR, 2)
    assert info.duplicates_removed == {"train": 0, "val": 0, "test": 0}  # val series are their own draws
    # Adding val changes no train or test byte.
    assert _cli("--out", str(tmp_path / "two"), *options).returncode == 0
    for split in ("train", "test"):
        assert _files(tmp_path / "two" / split) == _files(tmp_path / "three" / split)


@pytest.mark.parametrize(("arguments", "message"), [
    (["--classes", "mean_shift,wobble"], "error: unknown class(es) wobble; choose from:"),
    (["--imbalance", "longtail:0"], "error: longtail ratio must be a number >= 1"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, arguments, message):
    result = _cli("--out", str(tmp_path / "x"), "--train-per-class", "2", "--test-per-class", "1",
                  "--seed", "0", *arguments)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message) and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and not (tmp_path / "x").exists()


def test_cli_never_deletes_a_folder_with_a_foreign_manifest(tmp_path):
    out = tmp_path / "x"
    (out / "src").mkdir(parents=True)
    (out / "manifest.json").write_text('{"name":"my-web-app"}')
    (out / "src" / "app.js").write_text("code")
    result = _cli("--out", str(out), "--train-per-class", "1", "--test-per-class", "1", "--seed", "0",
                  "--classes", "mean_shift,volatility", "--size", "48x36", "--workers", "1")
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in result.stderr
    assert message.startswith(f"error: {out}/manifest.json was not written by anomaly-workbench generate")
    assert "choose a new or empty folder" in message
    assert (out / "src" / "app.js").read_text() == "code"
    assert (out / "manifest.json").read_text() == '{"name":"my-web-app"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def _start_slow_generate(out: Path) -> subprocess.Popen:
    """A generate run over ``out`` big enough (one worker) to be interrupted half way."""
    return subprocess.Popen([sys.executable, "-m", "backend", "generate", "--out", str(out), "--train-per-class",
                             "400", "--test-per-class", "1", "--seed", "9", "--classes", "mean_shift,volatility",
                             "--size", "48x36", "--workers", "1"], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_half_built(staging_parent: Path, name: str, process: subprocess.Popen) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        staging = list(staging_parent.glob(f".{name}.partial-*"))
        if staging and len(list(staging[0].rglob("*.png"))) >= 20:
            return staging[0]
        time.sleep(0.05)
    raise AssertionError(f"generate never got half way (exit {process.poll()}): {process.stderr.read()}")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_an_interrupted_generate_leaves_the_old_dataset_in_place(tmp_path, how):
    out = tmp_path / "data"
    _small(out)
    before = _files(out)
    process = _start_slow_generate(out)
    staging = _wait_for_half_built(tmp_path, "data", process)
    process.send_signal(how)
    assert process.wait(timeout=60) == (-signal.SIGKILL if how == signal.SIGKILL else 128 + signal.SIGTERM)
    assert "Traceback" not in process.stderr.read()
    assert _files(out) == before  # the old dataset, whole; nothing of the new one in its place
    if how == signal.SIGTERM:
        assert not staging.exists()  # cleaned up on the way out
        return
    assert staging.exists()  # SIGKILL leaves the hidden half-built copy beside it ...
    _small(out, seed=5)  # ... which the next generate of the same folder removes
    assert not staging.exists() and _manifest(out)["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
