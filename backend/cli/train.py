"""``python -m backend train``: train one model on one dataset in the foreground, into the run store.

Two ways in:

- ``--run-id N`` trains run row N, created beforehand by the run manager or the dashboard; its
  ``config`` column is the config (flags given here override it). This is exactly what every
  executor of ``backend.runs`` starts (a local subprocess, a Ray job).
- Otherwise a new run row is made from ``--config FILE`` and/or the flags.

This module only parses arguments; the run's life (claim, heartbeat, fit, final status, exit codes)
is ``backend.runs.lifecycle``, whose docstring lists the exit codes.
"""

from __future__ import annotations

import argparse

from backend.runs.lifecycle import train_process
from backend.training.config import add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", type=int, metavar="N", default=None,
                        help="train this queued run row (its stored config, overridden by any flags given)")  # fmt: skip
    add_config_arguments(parser)


def main(args: argparse.Namespace) -> int:
    return train_process(args)
