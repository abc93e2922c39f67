"""Device and precision, chosen once: CUDA when present, else CPU.

On CUDA: channels_last and autocast (bf16 where supported, else fp16 with a GradScaler).
On CPU: channels_last and bf16 autocast where the CPU supports it (``precision="auto"``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    channels_last: bool

    @property
    def uses_grad_scaler(self) -> bool:
        return self.device.type == "cuda" and self.dtype == torch.float16

    def autocast(self):
        """Autocast context for forward passes (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        return f"{name} ({self.device.type}, {precision}{', channels_last' if self.channels_last else ''})"


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA if available; ``cpu`` / ``cuda`` / ``cuda:N`` are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device auto or cpu")
    return device


def cpu_supports_bf16() -> bool:
    """True when a bf16 matmul runs natively enough to be worth autocasting on this CPU."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def make_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    dev = select_device(device)
    if precision == "fp32":
        dtype = None
    elif precision == "fp16":
        if dev.type != "cuda":
            raise ValueError("fp16 autocast is for CUDA; on the CPU use --precision bf16 or fp32")
        dtype = torch.float16
    elif precision == "bf16":
        dtype = torch.bfloat16
    elif dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.bfloat16 if cpu_supports_bf16() else None
    return Runtime(device=dev, dtype=dtype, channels_last=True)
