"""VAE + classifier (seed ``002_872c17b47a1d7faa.txt``): one latent code both rebuilds the plot and
names its anomaly.

Conv encoder -> (mu, logvar) -> conv decoder back to the input image, and an MLP classifier on mu.
The decoder reconstructs the *normalised* input (what the model was fed), so the reconstruction
error is measured in the same space as the input; the Predict page un-normalises it for display.

Loss scaling, which the product shows to users next to the three weights:

- ``recon = recon_weight * MSE`` with the squared error **averaged per pixel and channel**;
- ``kl = kl_weight * KL(N(mu, sigma) || N(0, 1))`` **averaged per latent dimension** (summed over
  the latent dimensions, divided by ``latent_dim``, averaged over the batch);
- the classification loss is scaled by ``class_weight``.

Per-pixel and per-dimension averages keep all three terms near the same size at every image size.
With the error summed over pixels (the seed's printed losses), the reconstruction term drowns the
class term: macro-F1 0.70 against 0.88 averaged, measured on the same data (``TARGETS.md``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.models import WorkbenchModel, register_model

GRID = 4  # the encoder pools to, and the decoder starts from, a GRID x GRID feature map
MAX_WIDTH_FACTOR = 8  # channels grow base, 2*base, ... up to 8*base
HEAD_HIDDEN = 256
HEAD_DROPOUT = 0.3
LOGVAR_LIMIT = 10.0  # keeps exp(logvar) finite early in training


class VAEClassifier(WorkbenchModel):
    """Encoder -> (mu, logvar); decoder rebuilds the image from z; the classifier reads mu."""

    cam_layers = ("encoder.-3",)  # Grad-CAM: the last encoder stage, before pooling (docs/EXPLAIN.md)

    def __init__(
        self,
        num_classes: int,
        image_size: int,
        latent_dim: int,
        recon_weight: float,
        kl_weight: float,
        class_weight: float,
        base_channels: int,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.recon_weight = recon_weight
        self.kl_weight = kl_weight
        self.classification_weight = class_weight
        widths = stage_widths(stage_count(image_size), base_channels)
        self.encoder = nn.Sequential(*_down_blocks([3, *widths]), nn.AdaptiveAvgPool2d(GRID), nn.Flatten())
        flat = widths[-1] * GRID * GRID
        self.to_mu = nn.Linear(flat, latent_dim)
        self.to_logvar = nn.Linear(flat, latent_dim)
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, flat), nn.Unflatten(1, (widths[-1], GRID, GRID)))
        self.decoder = nn.Sequential(
            *_up_blocks([*reversed(widths), widths[0]]),
            nn.Conv2d(widths[0], 3, kernel_size=3, padding=1),
        )
        self.classifier = nn.Sequential(
            nn.Linear(latent_dim, HEAD_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Dropout(HEAD_DROPOUT),
            nn.Linear(HEAD_HIDDEN, num_classes),
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.encoder(x)
        return self.to_mu(features), self.to_logvar(features).clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)

    def decode(self, z: Tensor, size: tuple[int, int]) -> Tensor:
        """Latent code -> image of ``size`` (H, W) in the normalised input space."""
        image = self.decoder(self.from_latent(z))
        if tuple(image.shape[-2:]) != tuple(size):
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        return image

    def forward(self, x: Tensor, *, decode_first: int | None = None) -> dict[str, Tensor]:
        """Logits for every image; ``recon`` for all of them, or only the first ``decode_first``.

        Prediction with TTA passes ``decode_first`` = the number of images as given: the flipped
        views only need their logits, and decoding is half the network's work.
        """
        mu, logvar = self.encode(x)
        # Sample z while training (the VAE's reparameterisation); use the mean for a stable eval.
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        features = self.classifier[:-1](mu)  # the classifier's hidden layer: the penultimate features
        return {
            "logits": self.classifier[-1](features),
            "features": features,
            "recon": self.decode(z if decode_first is None else z[:decode_first], x.shape[-2:]),
            "mu": mu,
            "logvar": logvar,
        }

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """The reconstruction from the mean code, for display (normalised space, same shape as x)."""
        return self.decode(self.encode(x)[0], x.shape[-2:])

    def auxiliary_losses(self, outputs: dict[str, Tensor], images: Tensor) -> dict[str, Tensor]:
        """``{"recon": recon_weight * per-pixel MSE, "kl": kl_weight * per-dimension KL}``."""
        recon = F.mse_loss(outputs["recon"].float(), images.float())
        mu, logvar = outputs["mu"].float(), outputs["logvar"].float()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()
        return {"recon": self.recon_weight * recon, "kl": self.kl_weight * kl}


def stage_count(image_size: int) -> int:
    """Halvings from the image down to about GRID pixels (2 at 16 px, 3 at 32, 6 at 224)."""
    return max(1, math.ceil(math.log2(image_size / GRID)))


def stage_widths(stages: int, base: int) -> list[int]:
    """Channels per encoder stage: base, 2*base, 4*base, then 8*base for the remaining stages."""
    return [base * min(2**i, MAX_WIDTH_FACTOR) for i in range(stages)]


def _down_blocks(channels: list[int]) -> list[nn.Module]:
    """Strided 3x3 conv + BN + LeakyReLU per stage: each halves the feature map."""
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels, channels[1:], strict=False):
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2, inplace=True),
        ]
    return layers


def _up_blocks(channels: list[int]) -> list[nn.Module]:
    """Transposed 4x4 conv (stride 2) + BN + LeakyReLU per stage: each doubles the feature map."""
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels, channels[1:], strict=False):
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2, inplace=True),
        ]
    return layers


@register_model(
    defaults={
        "image_size": 224,
        "batch_size": 32,
        "lr": 1e-4,
        "optimizer": "adam",
        "epochs": 30,
        "model_kwargs": {"latent_dim": 128, "recon_weight": 1.0, "kl_weight": 1.0, "class_weight": 1.0},
    }
)
def vae_classifier(
    num_classes: int,
    image_size: int,
    latent_dim: int = 128,
    recon_weight: float = 1.0,
    kl_weight: float = 1.0,
    class_weight: float = 1.0,
    base_channels: int = 32,
) -> VAEClassifier:
    """VAE + classifier; the three weights scale per-pixel MSE, per-dimension KL and the class loss.

    ``image_size`` sets how many stages the encoder and decoder have (about 6.0M parameters at
    224 px, 1.1M at 32 px); other sizes still work, the decoder's output is resized to the input.
    """
    if not isinstance(latent_dim, int) or latent_dim < 2:
        raise ValueError(f"latent_dim must be a whole number of at least 2, got {latent_dim!r}")
    if not isinstance(base_channels, int) or base_channels < 4:
        raise ValueError(f"base_channels must be a whole number of at least 4, got {base_channels!r}")
    if recon_weight < 0 or kl_weight < 0:
        raise ValueError(f"recon_weight and kl_weight must be 0 or more, got {recon_weight} and {kl_weight}")
    if class_weight <= 0:
        raise ValueError(f"class_weight must be above 0 (at 0 the classifier never learns), got {class_weight}")
    return VAEClassifier(
        num_classes, image_size, latent_dim, float(recon_weight), float(kl_weight), float(class_weight), base_channels
    )
