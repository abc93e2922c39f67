"""Prediction and evaluation with real checkpoints of tiny trained runs, real PNG/CSV files and a real
SQLite store: TTA averaging, the CSV path, every model family, and every kind of bad input."""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backend import store
from backend.data.csvseries import MAX_DRAW_POINTS
from backend.data.generate import generate_dataset
from backend.data.images import MAX_PIXELS, load_image_rgb, resize_rgb
from backend.data.render import encode_png, render_series
from backend.data.series import CLASSES
from backend.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from backend.device import make_runtime
from backend.models import create_model
from backend.predict import (
    PRECISION_TOLERANCE,
    PredictError,
    Predictor,
    check_classes,
    evaluate_folder,
    precision_agrees,
    store_evaluation,
)
from backend.training.checkpoint import build_checkpoint, load_checkpoint, read_checkpoint, save_checkpoint

FAMILIES = ("visual_cnn", "vae_classifier", "resnet50")


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn(completed_runs) -> Predictor:
    """The trained visual_cnn run in fp32, so TTA comparisons are exact."""
    return Predictor.from_run(completed_runs["visual_cnn"], device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def plot_png() -> bytes:
    return encode_png(render_series(np.sin(np.arange(300) / 12.0) + (np.arange(300) > 150)))


def paired_files(dataset: Path, split: str = "test") -> list[tuple[Path, Path]]:
    """(PNG, CSV) of the same generated series: ``<split>/<class>/<id>.png`` and ``csv/<split>/<class>/<id>.csv``."""
    pairs = []
    for png in sorted((dataset / split).glob("*/*.png")):
        csv = dataset / "csv" / split / png.parent.name / f"{png.stem}.csv"
        if csv.is_file():
            pairs.append((png, csv))
    assert pairs, f"no PNG/CSV pairs under {dataset}"
    return pairs


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def greyscale_png(side: int, idat: bytes) -> bytes:
    """A hand-made PNG whose header says ``side`` x ``side`` greyscale, with ``idat`` as its pixel data."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def zeros_bomb(side: int) -> bytes:
    """A real ``side`` x ``side`` all-black PNG: tens of megapixels in about a hundred kilobytes."""
    compressor = zlib.compressobj(1)
    block = b"\x00" * ((side + 1) * 100)  # 100 rows: a filter byte and ``side`` zero pixels each
    data = b"".join(compressor.compress(block) for _ in range(side // 100)) + compressor.flush()
    return greyscale_png(side, data)


def the_error(predictor: Predictor, filename: str, data: bytes, **kwargs) -> str:
    prediction = predictor.predict_file(data, filename=filename, **kwargs)
    assert prediction.error, f"{filename} should have failed but predicted {prediction.predicted}"
    assert prediction.predicted is None and prediction.probabilities == {}
    return prediction.error


def csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# --- TTA -----------------------------------------------------------------------------------------


def test_flip4_is_the_mean_of_the_four_flipped_views_predicted_one_by_one(cnn, tiny_dataset):
    pngs = sorted((tiny_dataset / "test").glob("*/*.png"))[:3]  # several: a view-major reshape bug would mix them
    images = [resize_rgb(load_image_rgb(png), cnn.image_size) for png in pngs]
    batched = cnn.predict_images(images, "flip4")
    for image, prediction in zip(images, batched, strict=True):
        views = [image, image[:, ::-1], image[::-1], image[::-1, ::-1]]
        singles = [cnn.predict_images([np.ascontiguousarray(v)], "none")[0].probabilities for v in views]
        expected = np.mean([[p[c] for c in cnn.class_names] for p in singles], axis=0)
        got = np.array([prediction.probabilities[c] for c in cnn.class_names])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert prediction.predicted == cnn.class_names[int(expected.argmax())]
    plain = cnn.predict_images(images, "none")
    assert any(  # the views differ: with the plot-area crop a tiny model's flipped answers differ only a little
        not np.array_equal(list(a.probabilities.values()), list(b.probabilities.values()))
        for a, b in zip(plain, batched, strict=True)
    ), "flip4 gave exactly the plain prediction: the flipped views were not used"


def test_unknown_tta_mode_names_the_valid_ones(cnn, plot_png):
    with pytest.raises(ValueError, match="unknown TTA mode 'rot8'; choose one of: flip4, none"):
        cnn.predict_files([("a.png", plot_png)], "rot8")


# --- CSV and image inputs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def team_size_dataset(tmp_path_factory) -> Path:
    """Generated at the team style's own size (800x600), the size the CSV path draws at. The shared
    ``tiny_dataset`` is drawn at 96x72 for speed, so its PNGs cannot match a CSV drawn here."""
    out = tmp_path_factory.mktemp("team_size") / "set"
    generate_dataset(out, train_per_class=1, test_per_class=1, seed=3, classes=CLASSES[:4], workers=1)
    return out


def test_generated_csv_and_its_png_predict_alike(cnn, team_size_dataset):
    pairs = paired_files(team_size_dataset)
    assert len(pairs) == 4
    results = cnn.predict_files([(p.name, p) for pair in pairs for p in pair], "flip4")
    for png, csv in zip(results[::2], results[1::2], strict=True):
        assert png.error is None and csv.error is None
        # The CSV holds the values rounded to text, so a pixel or two may differ; nothing more.
        assert csv.image.shape == png.image.shape
        assert np.mean(csv.image != png.image) < 0.001
        assert csv.predicted == png.predicted
        np.testing.assert_allclose(list(csv.probabilities.values()), list(png.probabilities.values()), atol=0.01)
        assert "series from column 'value'" in csv.notes


@pytest.mark.parametrize(
    ("suffix", "mode"),
    [(".png", "RGBA"), (".png", "L"), (".png", "P"), (".jpg", "RGB"), (".bmp", "RGB"), (".webp", "RGB")],
)
def test_every_accepted_format_and_mode_predicts(cnn, plot_png, suffix, mode):
    buffer = io.BytesIO()
    Image.open(io.BytesIO(plot_png)).convert(mode).save(buffer, format=Image.registered_extensions()[suffix])
    prediction = cnn.predict_file(buffer.getvalue(), filename=f"plot{suffix}")
    assert prediction.error is None
    assert prediction.image.dtype == np.uint8 and prediction.image.shape == (600, 800, 3)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.confidence == max(prediction.probabilities.values())


def test_a_bad_file_in_a_batch_fails_alone_and_order_is_kept(cnn, plot_png):
    files = [("a.png", plot_png), ("bad.png", b"not an image"), ("c.png", plot_png)]
    results = cnn.predict_files(files, "flip4", batch_size=2)
    assert [r.filename for r in results] == ["a.png", "bad.png", "c.png"]
    assert results[0].error is None and results[2].error is None and results[1].error
    assert results[0].probabilities == pytest.approx(results[2].probabilities)


def test_csv_column_option_picks_the_column(cnn):
    rows = ["time,slope,spiky,flat"] + [f"{i},{i / 10},{50.0 if i == 40 else np.sin(i / 4):.4f},1.0" for i in range(120)]
    slope = cnn.predict_file(csv_bytes(rows), filename="s.csv", column="slope")
    spiky = cnn.predict_file(csv_bytes(rows), filename="s.csv", column="spiky")
    assert "series from column 'slope'" in slope.notes and "series from column 'spiky'" in spiky.notes
    assert not np.array_equal(slope.image, spiky.image)
    assert "no column 'nope'; columns found: time, slope, spiky, flat" in the_error(
        cnn, "s.csv", csv_bytes(rows), column="nope"
    )
    assert "column 'flat' is constant: all 120 values are 1" in the_error(cnn, "s.csv", csv_bytes(rows), column="flat")


def test_predictor_is_safe_to_share_between_threads(cnn, plot_png):
    expected = cnn.predict_file(plot_png, filename="a.png", tta="flip4").probabilities
    results, errors = [], []

    def work():
        try:
            results.extend(cnn.predict_file(plot_png, filename="a.png", tta="flip4").probabilities for _ in range(3))
        except Exception as e:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 9 and all(r == pytest.approx(expected, abs=1e-6) for r in results)


# --- bad inputs ----------------------------------------------------------------------------------


def test_truncated_png(cnn, plot_png):
    error = the_error(cnn, "cut.png", plot_png[: len(plot_png) // 2])
    assert error == "cut.png is a truncated PNG: the file ends inside its pixel data"


def test_text_file_named_png(cnn):
    assert the_error(cnn, "notes.png", b"timestamp,value\n1,2\n") == "notes.png is not an image: its content is text"


def test_png_named_csv(cnn, plot_png):
    assert the_error(cnn, "series.csv", plot_png) == "series.csv is a PNG image, not a CSV series; rename it to .png"


def test_unsupported_extension_lists_the_accepted_ones(cnn, plot_png):
    assert "unsupported file type .gif; accepted: .png, .jpg" in the_error(cnn, "anim.gif", plot_png)


def test_empty_file(cnn):
    assert the_error(cnn, "empty.png", b"") == "empty.png is empty"


def test_decompression_bomb_is_refused(cnn):
    side = 8000  # 64 Mpx of zeros, about 60 kB compressed
    assert side * side > MAX_PIXELS
    assert "8000x8000 = 64 Mpx, over the 50 Mpx limit" in the_error(cnn, "bomb.png", zeros_bomb(side))


def test_pixel_cap_is_checked_before_the_pixels_are_decoded(cnn):
    # The header claims 8000x8000 but only one row of pixel data follows: decoding would fail as
    # truncated, so the cap message proves the size was refused from the header alone.
    header_only = greyscale_png(8000, zlib.compress(b"\x00" * 8001))
    assert "over the 50 Mpx limit" in the_error(cnn, "bomb.png", header_only)


def test_empty_csv(cnn):
    assert "CSV is empty" in the_error(cnn, "empty.csv", b"\n\n")


def test_csv_without_a_numeric_column(cnn):
    rows = ["date,city"] + [f"2024-01-{d:02d},Paris" for d in range(1, 20)]
    assert "CSV has no numeric column; columns found: date, city" in the_error(cnn, "cities.csv", csv_bytes(rows))


def test_csv_with_nans_and_infinities_says_what_was_done(cnn):
    values = [f"{np.sin(i / 5):.4f}" for i in range(60)]
    values[0], values[10], values[20], values[59] = "nan", "inf", "NaN", "-inf"
    prediction = cnn.predict_file(csv_bytes(["value", *values]), filename="gaps.csv")
    assert prediction.error is None
    note = next(n for n in prediction.notes if "missing or infinite" in n)
    assert "4 missing or infinite values (2 empty/NaN/text, 2 infinite)" in note
    assert "2 inside the series linearly interpolated" in note
    assert "2 at the ends dropped" in note


def test_csv_with_fewer_than_ten_points(cnn):
    error = the_error(cnn, "short.csv", csv_bytes(["value", *map(str, range(9))]))
    assert "only 9 finite values" in error and "at least 10" in error


def test_csv_with_millions_of_rows_is_thinned_for_drawing(cnn):
    values = np.arange(2_000_000) % 997
    values[1_234_567] = 100_000  # one spike: min/max thinning must keep it in the drawing
    data = b"value\n" + "\n".join(map(str, values.tolist())).encode()
    prediction = cnn.predict_file(data, filename="long.csv")
    assert prediction.error is None
    assert any("2,000,000 points" in n and f"drawn from {MAX_DRAW_POINTS:,}" in n for n in prediction.notes)


def test_missing_file_path(cnn, tmp_path):
    prediction = cnn.predict_file(tmp_path / "gone.png")
    assert prediction.error == "cannot read gone.png: No such file or directory"


# --- checkpoints and runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_checkpoint(completed_runs) -> dict:
    return read_checkpoint(store.get_run(completed_runs["visual_cnn"]).checkpoint_path)


def test_from_checkpoint_loads_the_file_without_a_run(cnn_checkpoint, completed_runs):
    path = store.get_run(completed_runs["visual_cnn"]).checkpoint_path
    predictor = Predictor.from_checkpoint(path, device="cpu")
    assert predictor.run_id is None
    assert predictor.model_name == "visual_cnn"
    assert predictor.class_names == cnn_checkpoint["class_names"]
    assert predictor.image_size == cnn_checkpoint["image_size"]


def test_checkpoint_of_another_model_family(cnn_checkpoint, tmp_path):
    path = save_checkpoint(
        tmp_path / "mixed.pt", {**cnn_checkpoint, "model_name": "vae_classifier", "model_kwargs": {}}
    )
    with pytest.raises(
        PredictError, match=r"cannot rebuild the model stored in .*mixed\.pt: Error\(s\) in loading state_dict"
    ):
        Predictor.from_checkpoint(path, device="cpu")


def test_checkpoint_of_an_unknown_model(cnn_checkpoint, tmp_path):
    path = save_checkpoint(tmp_path / "lstm.pt", {**cnn_checkpoint, "model_name": "lstm"})
    with pytest.raises(PredictError, match="unknown model 'lstm'; choose one of: resnet50, series_cnn, vae_classifier, visual_cnn"):
        Predictor.from_checkpoint(path, device="cpu")


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(create_model("visual_cnn", num_classes=3, image_size=32).state_dict(), path)
    with pytest.raises(PredictError, match="is not a checkpoint of this product; missing: format_version, model_name"):
        Predictor.from_checkpoint(path)


def test_corrupted_checkpoint_file(completed_runs, tmp_path):
    data = Path(store.get_run(completed_runs["visual_cnn"]).checkpoint_path).read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PredictError, match=r"cut.pt is truncated: its [0-9,]+ bytes end before") as caught:
        Predictor.from_checkpoint(path)
    assert "\n" not in str(caught.value)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(PredictError, match="checkpoint not found: .*nothing.pt"):
        Predictor.from_checkpoint(tmp_path / "nothing.pt")


def test_missing_run():
    with pytest.raises(PredictError, match="^run 987654 not found$"):
        Predictor.from_run(987654)


def test_run_without_a_checkpoint_says_its_status():
    run_id = store.create_run(name="broken", model="visual_cnn", config={}, dataset="x", status="failed")
    store.update_run(run_id, error="CUDA out of memory")
    with pytest.raises(
        PredictError, match=rf"^run {run_id} has no checkpoint yet \(status: failed: CUDA out of memory\)$"
    ):
        Predictor.from_run(run_id)


def test_run_whose_checkpoint_file_is_gone(tmp_path):
    run_id = store.create_run(name="moved", model="visual_cnn", config={}, dataset="x", status="completed")
    store.update_run(run_id, checkpoint_path=str(tmp_path / "best.pt"))
    with pytest.raises(
        PredictError, match=rf"^run {run_id}'s checkpoint .*best\.pt is missing \(moved or deleted\?\)$"
    ):
        Predictor.from_run(run_id)


# --- precision -----------------------------------------------------------------------------------


def test_precision_agreement_rule():
    reference = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]])
    assert precision_agrees(reference, reference + [[-0.01, 0.005, 0.005], [0, 0.01, -0.01]])
    assert not precision_agrees(reference, reference[:, [0, 2, 1]])  # second row's class flips
    assert not precision_agrees(reference, reference + [[-0.05, 0.05, 0], [0, 0, 0]])  # same class, too far


def test_bf16_that_changes_answers_falls_back_to_fp32():
    # Logits of about 1000 that differ by less than bf16's step there (8): bf16 sees a tie.
    model = create_model("visual_cnn", num_classes=3, image_size=32)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([1000.0, 1002.0, 1001.0]))
    checkpoint = build_checkpoint(
        model, class_names=["a", "b", "c"], image_size=32,
        normalization={"mean": IMAGENET_MEAN, "std": IMAGENET_STD}, epoch=0, metrics={}, config={},
    )  # fmt: skip
    bf16 = make_runtime("cpu", "bf16")
    assert Predictor(model, checkpoint, bf16).runtime.dtype is None
    assert Predictor(model, checkpoint, bf16, check_precision=False).runtime.dtype == torch.bfloat16


def test_bf16_kept_only_with_fp32_answers_on_the_test_split(completed_runs, tiny_dataset):
    """bf16 autocast is kept exactly when, on the probe plots, it gives fp32's answers; kept, it
    answers the run's test split as fp32 does. Which way a one-epoch (near-uniform) ResNet50 goes
    depends on the CPU's arithmetic, so both outcomes are checked against the rule."""
    from backend.predict import _probe_plots, run_checkpoint

    run_id = completed_runs["resnet50"]
    fp32 = Predictor.from_run(run_id, device="cpu", precision="fp32")
    bf16 = Predictor.from_run(run_id, device="cpu", precision="bf16")
    model, checkpoint = load_checkpoint(run_checkpoint(run_id))
    unchecked = Predictor(model, checkpoint, make_runtime("cpu", "bf16"), check_precision=False)
    assert unchecked.runtime.dtype == torch.bfloat16

    def probabilities(predictor, images) -> np.ndarray:
        return np.array([list(p.probabilities.values()) for p in predictor.predict_images(images)])

    probe = list(_probe_plots())
    agrees = precision_agrees(probabilities(fp32, probe), probabilities(unchecked, probe))
    assert (bf16.runtime.dtype == torch.bfloat16) == agrees  # kept if and only if the probe agrees
    if not agrees:
        assert bf16.runtime.dtype is None  # fell back to fp32
        return
    files = [(png.name, png) for png, _ in paired_files(tiny_dataset)]
    reference = np.array([list(p.probabilities.values()) for p in fp32.predict_files(files)])
    candidate = np.array([list(p.probabilities.values()) for p in bf16.predict_files(files)])
    np.testing.assert_allclose(candidate, reference, atol=0.05)
    # A one-epoch model is near-uniform: items whose two best classes lie within the check's tolerance
    # are ties either precision may break; every item fp32 decides by more, bf16 decides alike.
    top2 = np.sort(reference, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > PRECISION_TOLERANCE
    assert np.array_equal(reference.argmax(1)[decided], candidate.argmax(1)[decided])


# --- every model family, and evaluation ----------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_predict_and_evaluate_every_model_family(family, completed_runs, tiny_dataset):
    run_id = completed_runs[family]
    predictor = Predictor.from_run(run_id, device="cpu")
    assert predictor.model_name == family and predictor.run_id == run_id
    png, csv = paired_files(tiny_dataset)[0]
    results = predictor.predict_files([(png.name, png), (csv.name, csv)], "flip4")
    size = predictor.image_size
    for result in results:
        assert result.error is None and result.predicted in predictor.class_names
        if family == "vae_classifier":  # the VAE shows what it reconstructed, de-normalised to pixels
            assert result.reconstruction.shape == (size, size, 3) and result.reconstruction.dtype == np.uint8
            assert result.reconstruction.std() > 0
            # only view 0 (the image as given) is decoded: the same picture as without TTA
            alone = predictor.predict_files([(result.filename, png if result.filename == png.name else csv)], "none")[0]
            assert np.abs(alone.reconstruction.astype(int) - result.reconstruction).max() <= 2
        else:
            assert result.reconstruction is None

    result = evaluate_folder(predictor, tiny_dataset, tta="flip4")
    n_test = len(list((tiny_dataset / "test").glob("*/*.png")))
    assert result.split == "test" and result.n_samples == n_test == len(result.predictions)
    assert int(result.confusion.sum()) == n_test and result.confusion.shape == (len(result.class_names),) * 2
    assert result.accuracy == pytest.approx((result.predictions["true"] == result.predictions["predicted"]).mean())
    assert [row["class_name"] for row in result.per_class] == predictor.class_names
    assert sum(row["support"] for row in result.per_class) == n_test

    evaluation_id = store_evaluation(result, run_id)
    listed = store.list_evaluations(run_id)
    row = listed.set_index("id").loc[evaluation_id]
    assert row["tta"] == "flip4" and row["dataset"] == str(tiny_dataset)
    assert row["macro_f1"] == pytest.approx(result.macro_f1) and row["n_samples"] == n_test
    stored = store.class_metrics(run_id, evaluation_id=evaluation_id)
    assert stored["f1"].tolist() == pytest.approx([r["f1"] for r in result.per_class])
    names, matrix = store.confusion(run_id, evaluation_id=evaluation_id)
    assert names == result.class_names and np.array_equal(matrix, result.confusion)
    lo, hi = row["macro_f1_ci"]
    assert lo <= result.macro_f1 <= hi and row["n_resamples"] >= 1000 and 0.0 <= row["ece"] <= 1.0
    stored = store.predictions(run_id, evaluation_id)
    assert len(stored) == n_test and set(stored["split"]) == {"test"}
    first = stored.iloc[0]
    assert first["item_hash"] == hashlib.sha256((tiny_dataset / first["path"]).read_bytes()).hexdigest()
    assert (stored["true_index"] == stored["pred_index"]).mean() == pytest.approx(result.accuracy)
    assert len(store.predictions(run_id)) == n_test  # the run's own test rows (from training): a target left intact


def test_evaluate_a_plain_class_folder_uses_every_image(cnn, tiny_dataset, tmp_path):
    flat = tmp_path / "flat"
    for png in (tiny_dataset / "test").glob("*/*.png"):
        (flat / png.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, flat / png.parent.name / png.name)
    (flat / cnn.class_names[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = evaluate_folder(cnn, flat)
    assert result.split == "all"
    assert result.n_samples == len(list((tiny_dataset / "test").glob("*/*.png")))
    assert [name for name, _ in result.skipped] == [f"{cnn.class_names[0]}/broken.png"]


def test_evaluate_a_folder_of_varied_style_plots(cnn, tiny_dataset_varied):
    result = evaluate_folder(cnn, tiny_dataset_varied, tta="flip4")
    sizes = {Image.open(tiny_dataset_varied / f).size for f in result.predictions["file"]}
    assert len(sizes) > 1  # the files really differ in size; every one was resized the same way
    assert result.n_samples == len(list((tiny_dataset_varied / "test").glob("*/*.png"))) and not result.skipped
    assert 0.0 <= result.macro_f1 <= 1.0 and int(result.confusion.sum()) == result.n_samples


def test_evaluate_refuses_other_classes(cnn, tiny_dataset, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset / "test", other)
    (other / cnn.class_names[0]).rename(other / "seasonal_glitch")
    with pytest.raises(PredictError) as caught:
        evaluate_folder(cnn, other)
    assert str(caught.value) == (
        f"the dataset's classes do not match the checkpoint's (missing: {cnn.class_names[0]}; extra: seasonal_glitch)"
    )


def test_check_classes_accepts_the_same_classes_in_any_order():
    check_classes(["b", "a"], ["a", "b"])
    with pytest.raises(PredictError, match=r"\(missing: c\)$"):
        check_classes(["a", "b"], ["a", "b", "c"])
