"""Command line: ``python -m backend <command> [options]``.

Each command lives in ``backend/cli/<command>.py`` and provides ``add_arguments(parser)`` and
``main(args) -> int``. Commands are imported only when used, so ``generate`` never pays for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "generate": "make a synthetic dataset of time-series plots",
    "train": "train one model on one dataset (foreground)",
    "launch": "queue a training run as a supervised background process",
    "runs": "list, show, cancel or delete runs",
    "predict": "predict images or CSV series with a trained run",
    "evaluate": "evaluate a trained run on a labelled dataset folder",
    "explain": "Grad-CAM overlays of a run's model on images and CSV series",
    "export": "export a run's model to ONNX or TorchScript, checked against PyTorch",
}


def _usage() -> str:
    lines = ["usage: python -m backend <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, help_ in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"backend.cli.{name}")
    parser = argparse.ArgumentParser(prog=f"python -m backend {name}", description=COMMANDS[name])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
