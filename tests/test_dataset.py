"""Dataset scanning and statistics on real tiny image folders built here with PIL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.data.dataset import (
    DatasetError,
    balanced_class_weights,
    dataset_summary,
    drop_cross_split_duplicates,
    effective_number_weights,
    file_sha256,
    imbalance_ratio,
    list_datasets,
    scan_dataset,
)

REPO = Path(__file__).resolve().parent.parent


def write_png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def make_flat(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            write_png(root / name / f"{i:03d}.png", seed=i)
    return root


def make_split(root: Path, train: dict[str, int], test: dict[str, int]) -> Path:
    make_flat(root / "train", train)
    make_flat(root / "test", test)
    return root


def test_split_folders_give_sorted_classes_and_labels(tmp_path):
    root = make_split(tmp_path / "ds", {"b_cls": 3, "a_cls": 2, "c_cls": 1}, {"b_cls": 1, "a_cls": 1, "c_cls": 2})
    info = scan_dataset(root)
    assert info.split == "folder"
    assert info.classes == ["a_cls", "b_cls", "c_cls"]
    assert info.counts("train") == {"a_cls": 2, "b_cls": 3, "c_cls": 1}
    assert info.counts("test") == {"a_cls": 1, "b_cls": 1, "c_cls": 2}
    for sample in info.train + info.test:
        assert sample.path.parent.name == info.classes[sample.label]
    assert info.val == [] and info.val_source == "none"  # no val/ folder and no val_fraction asked
    with pytest.raises(ValueError, match="unknown split 'dev'; choose one of: train, val, test"):
        info.counts("dev")


def test_flat_layout_is_split_stratified_and_seeded(tmp_path):
    root = make_flat(tmp_path / "flat", {"x": 20, "y": 8, "z": 12})
    info = scan_dataset(root, test_fraction=0.25, seed=1)
    assert info.split == "stratified"
    train, test = {s.path for s in info.train}, {s.path for s in info.test}
    assert not train & test and len(train | test) == 40
    assert info.counts("test") == {"x": 5, "y": 2, "z": 3}  # a quarter of each class
    again = scan_dataset(root, test_fraction=0.25, seed=1)
    assert [s.path for s in again.test] == [s.path for s in info.test]
    other = scan_dataset(root, test_fraction=0.25, seed=2)
    assert {s.path for s in other.test} != test


def test_single_image_class_goes_to_train_and_the_split_says_so(tmp_path):
    root = make_flat(tmp_path / "flat", {"many": 10, "one": 1, "some": 6})
    info = scan_dataset(root, test_fraction=0.3)
    assert info.counts("train")["one"] == 1 and info.counts("test")["one"] == 0
    assert any("single image" in note and "'one'" in note for note in info.notes)
    assert all(n >= 1 for n in info.counts("train").values())


def test_tiny_classes_keep_a_train_image_each(tmp_path):
    root = make_flat(tmp_path / "flat", {"a": 2, "b": 2, "c": 2})
    info = scan_dataset(root, test_fraction=0.1)
    assert info.counts("train") == {"a": 1, "b": 1, "c": 1}
    assert info.counts("test") == {"a": 1, "b": 1, "c": 1}


def test_hidden_and_non_image_files_are_skipped_and_extensions_are_case_insensitive(tmp_path):
    root = make_flat(tmp_path / "ds", {"a": 2, "b": 2})
    write_png(root / "a" / "UPPER.PNG")
    write_png(root / "a" / "nested" / "deep.png")
    write_png(root / "a" / "._junk.png")  # macOS resource fork
    write_png(root / ".ipynb_checkpoints" / "x.png")
    write_png(root / "b" / ".cache" / "y.png")
    (root / "b" / "readme.txt").write_text("not an image")
    info = scan_dataset(root)
    assert info.classes == ["a", "b"]
    names = {s.path.name for s in info.train + info.test}
    assert {"UPPER.PNG", "deep.png"} <= names
    assert not {"._junk.png", "x.png", "y.png", "readme.txt"} & names


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: None, r"does not exist"),
        (lambda root: root.write_text("x"), r"is not a folder"),
        (lambda root: root.mkdir(), r"has no class folders"),
        (lambda root: make_flat(root, {"a": 3}), r"has only one class 'a'; a classifier needs at least two"),
        (lambda root: make_flat(root, {"a": 0, "b": 0}), r"has no images at all"),
        (lambda root: make_flat(root, {"a": 2, "b": 0}), r"class folder\(s\) with no images: b"),
        (lambda root: make_flat(root / "train", {"a": 2, "b": 2}), r"has train/ but no test/"),
        (
            lambda root: make_split(root, {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "d": 1}),
            r"same class folders; only in train: c; only in test: d",
        ),
        (lambda root: make_split(root, {"a": 1, "b": 0}, {"a": 1, "b": 1}), r"with no images: b"),
        (lambda root: make_split(root, {"a": 1, "b": 1}, {"a": 0, "b": 0}), r"test has no images"),
    ],
)
def test_bad_folders_get_clear_errors(tmp_path, build, message):
    root = tmp_path / "ds"
    build(root)
    with pytest.raises(DatasetError, match=message):
        scan_dataset(root)


def test_test_fraction_must_be_a_fraction(tmp_path):
    root = make_flat(tmp_path / "ds", {"a": 2, "b": 2})
    with pytest.raises(DatasetError, match="test_fraction must be between 0 and 1"):
        scan_dataset(root, test_fraction=1.0)


def test_unreadable_images_are_listed_not_fatal(tmp_path):
    root = make_split(tmp_path / "ds", {"a": 3, "b": 3}, {"a": 1, "b": 1})
    bad = root / "train" / "a" / "bad.png"
    bad.write_text("this is not a png")
    truncated = root / "test" / "b" / "cut.png"
    truncated.write_bytes(write_png(tmp_path / "full.png").read_bytes()[:30])
    info = scan_dataset(root, verify_images=True)
    assert {path for path, _ in info.unreadable} == {bad, truncated}
    assert all(reason for _, reason in info.unreadable)
    assert info.counts("train") == {"a": 3, "b": 3} and info.counts("test") == {"a": 1, "b": 1}
    unverified = scan_dataset(root)
    assert unverified.unreadable == [] and unverified.counts("train")["a"] == 4


def test_a_class_emptied_by_unreadable_files_says_so(tmp_path):
    root = make_flat(tmp_path / "ds", {"a": 3, "b": 0})
    (root / "b" / "one.png").write_text("text")
    (root / "b" / "two.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="no images: b; 2 of their files are unreadable"):
        scan_dataset(root, verify_images=True)


def test_unreadable_files_are_counted_in_every_split(tmp_path):
    root = make_split(tmp_path / "ds", {"a": 0, "b": 0}, {"a": 1, "b": 1})
    for split, n in (("train", 3), ("test", 2)):
        for name in ("a", "b"):
            for i in range(n):
                (root / split / name / f"text{i}.png").write_text("not an image")
    with pytest.raises(DatasetError) as error:
        scan_dataset(root, verify_images=True)
    assert "no images: a, b; 6 of their files are unreadable; 10 unreadable file(s) in all: 6 in train, 4 in test" \
        in str(error.value)

    for name in ("a", "b"):
        write_png(root / "train" / name / "good.png")
        (root / "test" / name / "000.png").write_text("not an image either")
    with pytest.raises(DatasetError) as error:
        scan_dataset(root, verify_images=True)
    assert str(error.value) == (f"{root / 'test'} has no readable images; put some test images in its class "
                                "folders; 12 unreadable file(s) in all: 6 in train, 6 in test")


def test_imbalance_ratio():
    assert imbalance_ratio({"a": 10, "b": 40, "c": 20}) == 4.0
    assert imbalance_ratio({"a": 5, "b": 5}) == 1.0
    assert imbalance_ratio({"a": 0, "b": 5}) == float("inf")


def test_balanced_class_weights_follow_n_over_k_nc():
    weights = balanced_class_weights({"a": 10, "b": 30})
    assert weights == pytest.approx({"a": 40 / (2 * 10), "b": 40 / (2 * 30)})
    with pytest.raises(ValueError, match="none for: b"):
        balanced_class_weights({"a": 1, "b": 0})


def test_effective_number_weights_are_class_balanced_and_average_one():
    counts = {"a": 10, "b": 100, "c": 1000}
    weights = effective_number_weights(counts, beta=0.999)
    raw = {k: (1 - 0.999) / (1 - 0.999**n) for k, n in counts.items()}
    scale = 3 / sum(raw.values())
    assert weights == pytest.approx({k: v * scale for k, v in raw.items()})
    assert np.mean(list(weights.values())) == pytest.approx(1.0)
    assert weights["a"] > weights["b"] > weights["c"]
    assert effective_number_weights(counts, beta=0.0) == pytest.approx({"a": 1, "b": 1, "c": 1})
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        effective_number_weights(counts, beta=1.0)


def test_list_datasets_keeps_only_folders_that_scan(tmp_path, monkeypatch):
    data = tmp_path / "data"
    make_split(data / "zeta", {"a": 1, "b": 1}, {"a": 1, "b": 1})
    make_flat(data / "alpha", {"a": 2, "b": 2})
    make_flat(data / "one_class", {"a": 2})
    (data / "empty").mkdir()
    (data / "notes.txt").write_text("x")
    assert list_datasets(data) == [data / "alpha", data / "zeta"]
    monkeypatch.setenv("DATA_DIR", str(data))
    assert list_datasets() == [data / "alpha", data / "zeta"]
    assert list_datasets(tmp_path / "nowhere") == []


def test_dataset_summary_is_json_and_complete(tmp_path):
    root = make_split(tmp_path / "ds", {"a": 4, "b": 2}, {"a": 2, "b": 0})
    (root / "test" / "b" / "broken.png").write_text("nope")
    (root / "manifest.json").write_text(json.dumps({"seed": 7, "classes": ["a", "b"]}))
    summary = dataset_summary(root)
    json.dumps(summary, allow_nan=False)  # the dashboard caches and shows it as JSON
    assert summary["classes"] == ["a", "b"] and summary["split"] == "folder"
    assert summary["counts"] == {"train": {"a": 4, "b": 2}, "test": {"a": 2, "b": 0}}
    assert summary["total_images"] == 8
    assert summary["imbalance_ratio"] == {"train": 2.0, "test": None}
    assert summary["class_weights"]["balanced"] == pytest.approx({"a": 0.75, "b": 1.5})
    assert summary["class_weights"]["effective_number"]["b"] > summary["class_weights"]["effective_number"]["a"]
    assert [u["path"] for u in summary["unreadable"]] == [str(root / "test" / "b" / "broken.png")]
    assert any("no test images for: b" in note for note in summary["notes"])
    assert summary["manifest"] == {"seed": 7, "classes": ["a", "b"]}


def test_a_val_folder_is_the_validation_split_and_the_summary_counts_it(tmp_path):
    root = make_split(tmp_path / "ds", {"a": 4, "b": 4}, {"a": 2, "b": 2})
    make_flat(root / "val", {"a": 1, "b": 3})
    info = scan_dataset(root, val_fraction=0.5)  # the folder wins over the fraction
    assert info.val_source == "folder"
    assert info.counts("val") == {"a": 1, "b": 3} and info.counts("train") == {"a": 4, "b": 4}
    assert all(s.path.parts[-3] == "val" for s in info.val)
    summary = dataset_summary(root)
    assert summary["counts"]["val"] == {"a": 1, "b": 3} and summary["total_images"] == 16
    (root / "val" / "c").mkdir()
    with pytest.raises(DatasetError, match="train/ and val/ must have the same class folders; only in val: c"):
        scan_dataset(root)


def test_without_a_val_folder_validation_is_a_seeded_stratified_share_of_train(tmp_path):
    root = make_split(tmp_path / "ds", {"x": 40, "y": 20}, {"x": 2, "y": 2})
    info = scan_dataset(root, val_fraction=0.25, seed=3)
    assert info.val_source == "stratified"
    assert info.counts("val") == {"x": 10, "y": 5}  # a quarter of each train class
    assert info.counts("train") == {"x": 30, "y": 15}
    train, val = {s.path for s in info.train}, {s.path for s in info.val}
    assert not train & val and all(s.path.parts[-3] == "train" for s in info.val)
    assert {s.path for s in scan_dataset(root, val_fraction=0.25, seed=3).val} == val
    assert {s.path for s in scan_dataset(root, val_fraction=0.25, seed=4).val} != val
    flat = scan_dataset(make_flat(tmp_path / "flat", {"x": 40, "y": 20}), test_fraction=0.25, val_fraction=0.2)
    assert len(flat.train) + len(flat.val) + len(flat.test) == 60 and flat.counts("test") == {"x": 10, "y": 5}
    assert flat.counts("val") == {"x": 6, "y": 3}  # a fifth of what test left in train
    with pytest.raises(DatasetError, match=r"val_fraction must be in \[0, 1\)"):
        scan_dataset(root, val_fraction=1.0)


def test_copies_across_splits_are_dropped_from_the_later_split_and_counted(tmp_path):
    root = tmp_path / "ds"
    for split, seeds in (("train", {"a": [1, 2, 3], "b": [4, 5, 6]}), ("val", {"a": [7], "b": [8]}),
                         ("test", {"a": [9, 10], "b": [11, 12]})):  # fmt: skip
        for name, per_class in seeds.items():
            for seed in per_class:
                write_png(root / split / name / f"{seed}.png", seed=seed)
    # Planted copies: a train image in val (another class, another name) and in test; a val image in test.
    write_png(root / "val" / "b" / "copy_of_train.png", seed=1)
    write_png(root / "test" / "a" / "copy_of_train.png", seed=2)
    write_png(root / "test" / "b" / "copy_of_val.png", seed=7)
    info = drop_cross_split_duplicates(scan_dataset(root))
    assert info.duplicates_removed == {"train": 0, "val": 1, "test": 2}
    assert (len(info.train), len(info.val), len(info.test)) == (6, 2, 4)
    hashes = {split: {file_sha256(s.path) for s in getattr(info, split)} for split in ("train", "val", "test")}
    assert not hashes["train"] & hashes["val"] and not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]
    assert all("copy" not in s.path.name for s in info.val + info.test)
    assert info.hashes[info.test[0].path] == file_sha256(info.test[0].path)
    assert any("1 from val, 2 from test" in note for note in info.notes)


def test_dataset_summary_notes_a_broken_manifest(tmp_path):
    root = make_flat(tmp_path / "ds", {"a": 3, "b": 3})
    (root / "manifest.json").write_text("{not json")
    summary = dataset_summary(root)
    assert summary["manifest"] is None
    assert any("manifest.json could not be read" in note for note in summary["notes"])


def test_dataset_images_and_csv_modules_do_not_import_torch():
    code = (
        "import sys; import backend.data.dataset, backend.data.images, backend.data.csvseries; "
        "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
