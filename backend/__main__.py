"""Command line: ``python -m backend <command> [options]``.

Each command lives in ``backend/cli/<command>.py`` and provides ``add_arguments(parser)`` and
``main(args) -> int``. Commands are imported only when used, so ``generate`` never pays for torch.

This is the CLI's one error boundary: a ``WorkbenchError`` (bad input, unreadable or foreign store,
schema too new, missing run...) prints ``error: <message>`` on stderr and exits 2; the traceback is
shown only with ``--debug`` (anywhere on the command line) or ``ANOMALY_DEBUG=1``. A reader that
closes the pipe (``runs show 3 | head -1``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from backend.errors import WorkbenchError

COMMANDS = {
    "generate": "make a synthetic dataset of time-series plots",
    "train": "train one model on one dataset (foreground)",
    "launch": "queue a training run as a supervised background process",
    "runs": "list, show, cancel or delete runs",
    "predict": "predict images or CSV series with a trained run",
    "evaluate": "evaluate a trained run on a labelled dataset folder",
    "compare": "compare two runs on the same test items (paired test)",
    "db": "show or upgrade the run store's schema revision",
    "explain": "Grad-CAM overlays of a run's model on images and CSV series",
    "export": "export a run's model to ONNX or TorchScript, checked against PyTorch",
}
DEBUG_FLAG = "--debug"
DEBUG_ENV = "ANOMALY_DEBUG"
EXIT_USER_ERROR = 2


def _usage() -> str:
    lines = ["usage: python -m backend [--debug] <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, help_ in COMMANDS.items()]
    return "\n".join(lines)


def debug_enabled() -> bool:
    """Whether tracebacks are wanted: ``ANOMALY_DEBUG`` set (not 0), which ``--debug`` sets.

    The one place ``ANOMALY_DEBUG`` is read (the trainer asks here too)."""
    return os.environ.get(DEBUG_ENV, "") not in {"", "0"}


def _run(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USER_ERROR
    module = importlib.import_module(f"backend.cli.{name}")
    parser = argparse.ArgumentParser(prog=f"python -m backend {name}", description=COMMANDS[name])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    return int(module.main(args) or 0)


def _quiet_broken_pipe() -> int:
    """The reader went away: point stdout at /dev/null so the interpreter's final flush is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if DEBUG_FLAG in argv:
        os.environ[DEBUG_ENV] = "1"  # for this process and the trainers it starts
    debug = debug_enabled()
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        code = _run(argv)
        sys.stdout.flush()  # inside the boundary: a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except WorkbenchError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
