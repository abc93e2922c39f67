"""A small CNN for plot images: a few hundred thousand parameters, trains in minutes on a CPU.

The product's answer to the seed's 5-class visual model (``000_6ece13bbb17eaa0d.txt``): ResNet50
trains at about 4 img/s on this 2-core CPU at 224 px, this network at 64-128 px is the one to try
without a GPU (``TARGETS.md``). It works for any number of classes, not only five.
"""

from __future__ import annotations

from torch import Tensor, nn

from backend.models import WorkbenchModel, register_model

MAX_WIDTH_DOUBLINGS = 3  # widths width, 2*width, 4*width, 8*width, then 8*width again


class VisualCNN(WorkbenchModel):
    """``blocks`` blocks of ``convs`` conv-BN-ReLU then a max-pool -> average pooling to a ``head_grid``
    square -> dropout -> linear.

    With ``head_grid=1`` the head sees only a global average and forgets where each feature was; a
    2x2 grid keeps left from right and top from bottom, which is what tells a smooth trend from a
    kinked one or a random walk (``docs/GENERALIZATION.md``: +10-23 macro-F1 points in every cell).
    """

    cam_layers = ("features.-1", "features.-2", "features.-3")  # Grad-CAM: last conv blocks (docs/EXPLAIN.md)

    def __init__(
        self, num_classes: int, width: int, dropout: float, blocks: int = 4, head_grid: int = 1, convs: int = 1
    ):
        super().__init__()
        channels = [3] + [width * 2 ** min(i, MAX_WIDTH_DOUBLINGS) for i in range(blocks)]
        self.features = nn.Sequential(
            *(conv_block(c_in, c_out, convs) for c_in, c_out in zip(channels, channels[1:], strict=False))
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(head_grid),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels[-1] * head_grid**2, num_classes),
        )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = self.head[:-1](self.features(x))  # pooled, flattened: the penultimate layer
        return {"logits": self.head[-1](features), "features": features}


def conv_block(c_in: int, c_out: int, convs: int = 1) -> nn.Sequential:
    """``convs`` times 3x3 conv + BN + ReLU, then a 2x2 max-pool (ceil mode, so odd and tiny sizes keep
    a pixel). One conv keeps the layer names checkpoints written before ``convs`` existed use."""
    layers: list[nn.Module] = []
    for index in range(convs):
        channels_in = c_in if index == 0 else c_out
        layers += [nn.Conv2d(channels_in, c_out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2, ceil_mode=True))


@register_model(
    defaults={
        "image_size": 128,
        "batch_size": 32,
        "lr": 1e-3,
        "optimizer": "adamw",
        "scheduler": "onecycle",
        "epochs": 20,
        # New runs get the deeper, position-aware network with two convolutions per block (+3.5
        # points macro-F1 on 600 mixed plots per class, paired, docs/BENCHMARKS_quality.md); the
        # builder's own defaults stay the original 4-block, global-pool, one-conv network so
        # checkpoints that stored only width/dropout rebuild.
        "model_kwargs": {"blocks": 5, "head_grid": 2, "convs": 2},
        # Dark-theme plots reach the network inverted (backend.data.plotarea.apply_polarity): +1.3
        # points on 600 mixed plots per class, +2.7 on the varied half, paired (docs/BENCHMARKS_crop.md).
        "polarity": "light",
    }
)
def visual_cnn(
    num_classes: int,
    image_size: int,
    width: int = 32,
    dropout: float = 0.3,
    blocks: int = 4,
    head_grid: int = 1,
    convs: int = 1,
) -> VisualCNN:
    """Small CNN: about 390k parameters at width 32 with 4 blocks, about 990k with 5 blocks and a 2x2
    head, 2.4M with the recommended 5 blocks, 2x2 head and two convolutions per block; any image
    size >= 16 (adaptive pooling). ``convs`` stacks that many convolutions in each block (2: about
    3.3 times the multiply-adds with 5 blocks, about twice the training time on this CPU,
    ``docs/BENCHMARKS_quality.md``).

    ``image_size`` is part of the common builder signature; the architecture does not depend on it.
    """
    for name, value, least in (("width", width, 4), ("blocks", blocks, 1), ("head_grid", head_grid, 1), ("convs", convs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a whole number of at least {least}, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout}")
    return VisualCNN(num_classes, width, float(dropout), blocks, head_grid, convs)
