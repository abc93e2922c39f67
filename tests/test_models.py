"""The model registry and its three families: the contract every caller relies on, parameter counts,
that each can learn (overfit one batch), checkpoint rebuilds, VAE loss scaling, and pretrained weights
that come only from local files."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F
import torchvision

from backend.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from backend.models import (
    check_model_kwargs,
    count_parameters,
    create_model,
    list_models,
    model_defaults,
)
from backend.models.resnet import IMAGENET_WEIGHTS, PretrainedWeightsError, hub_weights_path

# Non-default, small architecture options per model: rebuilding must honour them.
SMALL_KWARGS = {
    "resnet50": {"dropout": (0.1, 0.2, 0.0)},
    "vae_classifier": {"latent_dim": 16, "base_channels": 8, "kl_weight": 0.5},
    "visual_cnn": {"width": 8, "dropout": 0.1},
}


def smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images (upsampled 4x4 noise): learnable, unlike pixel noise, for the VAE too."""
    generator = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.randn(n, 3, 4, 4, generator=generator), size=size, mode="bilinear")


def total_loss(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loop's formula, the same for every model: weighted class loss + weighted extra terms."""
    outputs = model(images)
    auxiliary = model.auxiliary_losses(outputs, images)
    return model.classification_weight * F.cross_entropy(outputs["logits"], labels) + sum(auxiliary.values())


def test_registry_lists_the_three_models_and_rejects_unknown_names():
    assert list_models() == ["resnet50", "series_cnn", "vae_classifier", "visual_cnn"]
    with pytest.raises(
        ValueError, match="unknown model 'resnet18'; choose one of: resnet50, series_cnn, vae_classifier, visual_cnn"
    ):
        create_model("resnet18", num_classes=3, image_size=32)
    with pytest.raises(ValueError, match="unknown model"):
        model_defaults("resnet18")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1, "image_size": 32}, "num_classes must be a whole number of at least 2"),
        ({"num_classes": 3, "image_size": 8}, "image_size must be a whole number of pixels of at least 16"),
        (
            {"num_classes": 3, "image_size": 32, "latent_dim": 8},
            "model 'visual_cnn' has no option latent_dim; its options are: width, dropout, blocks, head_grid, convs",
        ),
        ({"num_classes": 3, "image_size": 32, "dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
    ],
)
def test_bad_model_arguments_fail_with_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model("visual_cnn", **kwargs)


@pytest.mark.parametrize("name", ["resnet50", "vae_classifier", "visual_cnn"])
@pytest.mark.parametrize(("size", "num_classes"), [(32, 3), (48, 9)])
def test_every_model_honours_the_output_contract(name, size, num_classes):
    torch.manual_seed(0)
    model = create_model(name, num_classes=num_classes, image_size=size)
    images = torch.randn(4, 3, size, size)
    outputs = model(images)
    assert outputs["logits"].shape == (4, num_classes)
    assert model.model_name == name
    assert model.classification_weight == 1.0
    auxiliary = model.auxiliary_losses(outputs, images)
    assert all(term.dim() == 0 and torch.isfinite(term) for term in auxiliary.values())
    if "recon" in outputs:  # the VAE: reconstruction in the input's shape, latent statistics
        assert outputs["recon"].shape == images.shape
        assert outputs["mu"].shape == outputs["logvar"].shape == (4, 128)
        assert set(auxiliary) == {"recon", "kl"}
    else:
        assert auxiliary == {}
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(images)["logits"], model(images)["logits"])
        # The penultimate features are what the last layer reads: logits follow from them alone.
        outputs = model(images)
        features = outputs["features"]
        assert features.dim() == 2 and features.shape[0] == 4
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        torch.testing.assert_close(last(features), outputs["logits"])


def test_vae_decodes_only_the_first_images_when_asked():
    torch.manual_seed(0)
    model = create_model("vae_classifier", num_classes=3, image_size=32).eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        full, first = model(images), model(images, decode_first=1)
    assert first["recon"].shape == (1, 3, 32, 32)
    torch.testing.assert_close(first["recon"], full["recon"][:1])
    torch.testing.assert_close(first["logits"], full["logits"])


def test_parameter_counts():
    assert count_parameters(create_model("resnet50", num_classes=9, image_size=224)) == 24_692_297  # the seed's figure
    assert 100_000 < count_parameters(create_model("visual_cnn", num_classes=9, image_size=128)) < 1_000_000
    vae_small = count_parameters(create_model("vae_classifier", num_classes=9, image_size=32))
    vae_large = count_parameters(create_model("vae_classifier", num_classes=9, image_size=224))
    assert vae_small < vae_large < 10_000_000  # more stages for larger images, still far below ResNet50


@pytest.mark.parametrize(("name", "steps"), [("visual_cnn", 15), ("vae_classifier", 40), ("resnet50", 12)])
def test_each_model_can_overfit_one_batch(name, steps):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, image_size=32).train()
    images, labels = smooth_images(8, 32), torch.arange(8) % 3
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        loss = total_loss(model, images, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # Training-mode losses on both ends: a few steps are too few for BatchNorm's running statistics.
    assert sum(losses[-3:]) / 3 < 0.25 * losses[0]


@pytest.mark.parametrize("name", ["resnet50", "vae_classifier", "visual_cnn"])
def test_model_kwargs_rebuild_the_same_model_through_json_and_a_weights_only_checkpoint(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, image_size=32, **SMALL_KWARGS[name]).eval()
    path = tmp_path / "checkpoint.pt"
    torch.save(
        {"model_name": model.model_name, "model_kwargs": model.model_kwargs, "state_dict": model.state_dict()}, path
    )
    checkpoint = torch.load(path, weights_only=True)
    kwargs = json.loads(json.dumps(checkpoint["model_kwargs"]))
    rebuilt = create_model(checkpoint["model_name"], num_classes=3, image_size=32, **kwargs).eval()
    rebuilt.load_state_dict(checkpoint["state_dict"], strict=True)
    images = smooth_images(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images)["logits"], model(images)["logits"])
    assert rebuilt.model_kwargs == model.model_kwargs


def test_vae_loss_terms_follow_their_weights_and_documented_scaling():
    torch.manual_seed(0)
    plain = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16).eval()
    weighted = create_model(
        "vae_classifier", num_classes=3, image_size=32, latent_dim=16, recon_weight=2.0, kl_weight=0.0, class_weight=3.0
    ).eval()
    weighted.load_state_dict(plain.state_dict())
    images = smooth_images(4, 32)
    with torch.no_grad():
        out = plain(images)
        base, scaled = plain.auxiliary_losses(out, images), weighted.auxiliary_losses(weighted(images), images)
    # recon: squared error averaged per pixel; kl: summed over latent dims / latent_dim, batch mean.
    torch.testing.assert_close(base["recon"], ((out["recon"] - images) ** 2).mean())
    kl_per_sample = -0.5 * (1 + out["logvar"] - out["mu"] ** 2 - out["logvar"].exp()).sum(dim=1)
    torch.testing.assert_close(base["kl"], kl_per_sample.mean() / 16)
    assert base["kl"] > 0
    torch.testing.assert_close(scaled["recon"], 2.0 * base["recon"])
    assert scaled["kl"] == 0
    assert weighted.classification_weight == 3.0


def test_vae_samples_while_training_and_reconstructs_from_the_mean():
    torch.manual_seed(0)
    model = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16)
    images = smooth_images(4, 32)
    model.train()
    assert not torch.equal(model(images)["recon"], model(images)["recon"])  # reparameterised z
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.reconstruct(images), model(images)["recon"])
    other_size = smooth_images(2, 40)
    assert model.reconstruct(other_size).shape == other_size.shape


def test_vae_kl_warm_up_scales_the_kl_term_by_epoch():
    torch.manual_seed(0)
    model = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16, kl_warmup_epochs=3).eval()
    images = smooth_images(4, 32)
    with torch.no_grad():
        outputs = model(images)
    shares = []
    for epoch in range(1, 6):
        model.start_epoch(epoch, 5)
        shares.append(model.auxiliary_losses(outputs, images)["kl"])
    full = shares[-1]
    torch.testing.assert_close(torch.stack(shares) / full, torch.tensor([0.25, 0.5, 0.75, 1.0, 1.0]))
    plain = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16)
    plain.start_epoch(1, 5)
    assert plain.kl_scale == 1.0  # no warm-up: the full weight from the first epoch


def test_vae_classifier_reads_a_sample_only_while_training_when_asked():
    torch.manual_seed(0)
    images = smooth_images(4, 32)
    on_mean = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16).train()
    on_sample = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16, classify_on="sample")
    on_sample.load_state_dict(on_mean.state_dict())
    on_sample.train()
    torch.manual_seed(1)
    first = on_sample(images)["logits"]
    assert not torch.equal(first, on_sample(images)["logits"])  # a fresh z each pass
    on_mean.classifier[2].eval(), on_sample.classifier[2].eval()  # dropout off: only z may differ
    torch.manual_seed(2)
    assert torch.equal(on_mean(images)["logits"], on_mean(images)["logits"])  # the mean: no noise reaches the head
    on_mean.eval(), on_sample.eval()
    with torch.no_grad():  # at prediction both read the mean: same weights, same answer
        torch.testing.assert_close(on_sample(images)["logits"], on_mean(images)["logits"])


def test_vae_classifier_can_read_the_encoders_features_and_the_code_still_rebuilds_the_image():
    torch.manual_seed(0)
    images = smooth_images(4, 32)
    model = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16, classify_on="features")
    pooled = model.encoder[:-1](images).flatten(1)  # the pooled map before the latent layers
    assert model.classifier[0].in_features == pooled.shape[1] != 16
    model.eval()
    with torch.no_grad():
        out = model(images)
        # The head reads the encoder's features, not mu: the same logits with the latent layers zeroed.
        expected = model.classifier(model.encoder(images))
        torch.nn.init.zeros_(model.to_mu.weight), torch.nn.init.zeros_(model.to_mu.bias)
        torch.testing.assert_close(model(images)["logits"], expected)
    torch.testing.assert_close(out["logits"], expected)
    assert out["recon"].shape == images.shape and out["mu"].shape == (4, 16)
    model.train()
    losses = model.auxiliary_losses(model(images), images)
    (losses["recon"] + losses["kl"]).backward()  # the decoder's losses still train the encoder
    assert model.encoder[0].weight.grad.abs().sum() > 0


def test_vae_capacity_options_add_convolutions_and_keep_shapes():
    base = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16)
    deeper = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16, encoder_convs=2, decoder_convs=2)
    convs = lambda m, part: sum(isinstance(x, torch.nn.Conv2d) for x in getattr(m, part).modules())  # noqa: E731
    stages = 3  # 32 px -> 4 px
    assert convs(deeper, "encoder") == convs(base, "encoder") + stages
    assert convs(deeper, "decoder") == convs(base, "decoder") + stages
    images = smooth_images(2, 32)
    with torch.no_grad():
        assert deeper.eval()(images)["recon"].shape == images.shape


def test_vae_psnr_is_measured_in_pixels_and_rises_as_the_reconstruction_improves():
    model = create_model("vae_classifier", num_classes=3, image_size=32, latent_dim=16).eval()
    images = smooth_images(3, 32)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))  # the training normalisation
    exact = model.quality_metrics({"recon": images.clone()}, images)["recon_psnr"]
    assert exact == pytest.approx(60.0)  # capped: a perfect copy
    pixels = images * std + mean
    off_by = {step: ((pixels + step).clamp(0, 1) - mean) / std for step in (0.02, 0.2)}
    close = model.quality_metrics({"recon": off_by[0.02]}, images)["recon_psnr"]
    far = model.quality_metrics({"recon": off_by[0.2]}, images)["recon_psnr"]
    assert far < close < 60
    # At most 0.02 off anywhere (less where a pixel meets the [0, 1] clamp): PSNR >= -10 log10(0.02^2) = 34 dB.
    assert close >= 34.0 - 1e-3 and far < 20.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"class_weight": 0.0}, "class_weight must be above 0"),
        ({"kl_weight": -1.0}, "recon_weight and kl_weight must be 0 or more"),
        ({"latent_dim": 1}, "latent_dim must be a whole number of at least 2"),
        ({"kl_warmup_epochs": -1}, "kl_warmup_epochs must be a whole number of 0 or more"),
        ({"classify_on": "mode"}, "classify_on must be one of mean, sample, features"),
        ({"encoder_convs": 0}, "encoder_convs must be a whole number from 1 to 4"),
        ({"decoder_convs": 9}, "decoder_convs must be a whole number from 1 to 4"),
    ],
)
def test_vae_rejects_bad_weights(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model("vae_classifier", num_classes=3, image_size=32, **kwargs)


def test_model_defaults_carry_the_seed_hyperparameters():
    resnet = model_defaults("resnet50")
    assert resnet == {
        "image_size": 224,
        "batch_size": 32,
        "lr": 1e-3,
        "optimizer": "adam",
        "scheduler": "plateau",
        "plateau_factor": 0.5,
        "plateau_patience": 3,
        "epochs": 30,
    }
    assert model_defaults("vae_classifier")["model_kwargs"]["latent_dim"] == 128
    assert model_defaults("vae_classifier")["epochs"] == 60  # 40 -> 60: docs/BENCHMARKS_vae.md, 2026-12-05
    assert model_defaults("series_cnn")["epochs"] == 60  # 30 -> 60: docs/BENCHMARKS_series.md, 2026-12-08
    assert model_defaults("visual_cnn")["scheduler"] == "onecycle"
    assert model_defaults("visual_cnn")["model_kwargs"] == {"blocks": 5, "head_grid": 2, "convs": 2}
    resnet["lr"] = 99.0  # a caller's edits never leak into the registry
    assert model_defaults("resnet50")["lr"] == 1e-3


# --- pretrained weights: only local files, plain errors ---------------------------------------------


@pytest.fixture(scope="module")
def resnet50_weights_file(tmp_path_factory):
    """A torchvision ResNet50 state dict (random weights) saved the way torchvision ships its files."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet50-random.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    return path


def assert_backbone_loaded(model, path):
    saved = torch.load(path, weights_only=True)
    for key in ("conv1.weight", "layer2.1.conv2.weight", "layer4.2.bn3.running_var"):
        assert torch.equal(model.backbone.state_dict()[key], saved[key])


def test_weights_file_loads_the_backbone_and_is_not_kept_in_model_kwargs(resnet50_weights_file):
    model = create_model("resnet50", num_classes=3, image_size=32, weights_file=str(resnet50_weights_file))
    assert_backbone_loaded(model, resnet50_weights_file)
    assert model.model_kwargs == {"dropout": [0.3, 0.3, 0.2]}  # a rebuilt checkpoint never looks for the file


def test_weights_file_can_be_a_checkpoint_of_this_product(tmp_path):
    torch.manual_seed(2)
    source = create_model("resnet50", num_classes=5, image_size=32)
    path = tmp_path / "best.pt"
    torch.save({"state_dict": source.state_dict()}, path)
    model = create_model("resnet50", num_classes=3, image_size=32, weights_file=path)
    assert torch.equal(model.backbone.conv1.weight, source.backbone.conv1.weight)


@pytest.mark.parametrize("weights", IMAGENET_WEIGHTS, ids=lambda w: w.name)
def test_pretrained_loads_imagenet_weights_from_the_local_torch_cache(
    weights, resnet50_weights_file, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = hub_weights_path(weights)
    assert cached.parent == tmp_path / "hub" / "checkpoints"
    cached.parent.mkdir(parents=True)
    os.symlink(resnet50_weights_file, cached)
    model = create_model("resnet50", num_classes=3, image_size=32, pretrained=True)
    assert_backbone_loaded(model, resnet50_weights_file)


def test_pretrained_without_cached_weights_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    with pytest.raises(PretrainedWeightsError, match="not in the local torch cache") as error:
        create_model("resnet50", num_classes=3, image_size=32, pretrained=True)
    assert str(expected) in str(error.value)
    assert "--weights FILE" in str(error.value)
    assert isinstance(error.value, ValueError)
    assert not expected.exists()  # nothing was downloaded


def test_unusable_weights_files_fail_plainly(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(PretrainedWeightsError, match=f"weights file {missing} does not exist"):
        create_model("resnet50", num_classes=3, image_size=32, weights_file=missing)
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"layer.weight": torch.zeros(2)}, unrelated)
    with pytest.raises(
        PretrainedWeightsError, match="is not a ResNet50 state dict: 265 of 265 backbone tensors are missing"
    ):
        create_model("resnet50", num_classes=3, image_size=32, weights_file=unrelated)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(PretrainedWeightsError, match="could not read weights file"):
        create_model("resnet50", num_classes=3, image_size=32, weights_file=garbage)


def test_check_model_kwargs_validates_before_a_run_starts(resnet50_weights_file, tmp_path):
    check_model_kwargs("resnet50", {"weights_file": str(resnet50_weights_file), "dropout": [0.1, 0.1, 0.1]})
    check_model_kwargs("vae_classifier", {"latent_dim": 64, "kl_weight": 0.1})
    with pytest.raises(ValueError, match="latent_dim must be a whole number of at least 2"):
        check_model_kwargs("vae_classifier", {"latent_dim": 0})
    with pytest.raises(ValueError, match="has no option latent_dim"):
        check_model_kwargs("resnet50", {"latent_dim": 8})
    with pytest.raises(PretrainedWeightsError, match="does not exist"):
        check_model_kwargs("resnet50", {"weights_file": str(tmp_path / "missing.pth")})


def test_visual_cnn_head_grid_keeps_where_features_are():
    """The same mark moved by the network's total stride (32 px for 5 blocks) on a blank canvas:
    a global-pool head cannot tell the two apart, a 2x2 head can (left from right)."""
    left, right = torch.zeros(1, 3, 128, 128), torch.zeros(1, 3, 128, 128)
    left[..., 60:68, 40:48] = 1.0
    right[..., 60:68, 72:80] = 1.0
    logits = {}
    for grid in (1, 2):
        torch.manual_seed(0)
        model = create_model("visual_cnn", num_classes=3, image_size=128, blocks=5, head_grid=grid).eval()
        with torch.no_grad():
            logits[grid] = (model(left)["logits"], model(right)["logits"])
    assert torch.allclose(*logits[1], atol=1e-5)
    assert not torch.allclose(*logits[2], atol=1e-3)
    assert count_parameters(create_model("visual_cnn", num_classes=9, image_size=64, blocks=5, head_grid=2)) < 1_000_000


def test_visual_cnn_rejects_a_bad_block_count():
    with pytest.raises(ValueError, match="blocks must be a whole number of at least 1"):
        create_model("visual_cnn", num_classes=3, image_size=32, blocks=0)
    with pytest.raises(ValueError, match="convs must be a whole number of at least 1"):
        create_model("visual_cnn", num_classes=3, image_size=32, convs=0)


def test_visual_cnn_stacks_convolutions_per_block_and_one_keeps_the_old_layer_names():
    """convs=2 puts two conv-BN-ReLU in each block; convs=1 (the default) is the network older
    checkpoints were saved from, layer for layer."""
    one = create_model("visual_cnn", num_classes=9, image_size=64, blocks=5, head_grid=2, width=8)
    two = create_model("visual_cnn", num_classes=9, image_size=64, blocks=5, head_grid=2, width=8, convs=2)
    old_names = {f"features.{b}.{i}.{p}" for b in range(5) for i, p in ((0, "weight"), (1, "weight"), (1, "bias"))}
    assert old_names <= set(one.state_dict()) and not any(k.startswith("features.0.3") for k in one.state_dict())
    assert sum(isinstance(m, torch.nn.Conv2d) for m in two.modules()) == 10
    assert count_parameters(two) > count_parameters(one)
    assert two(torch.rand(2, 3, 64, 64))["logits"].shape == (2, 9)
