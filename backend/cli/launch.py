"""``python -m backend launch [train options]``: queue a training run in the background, print its id.

Takes exactly the options of ``python -m backend train`` (the same ``add_config_arguments``), validates
them, and returns as soon as the run is queued or started; the run goes on after this command ends.
Follow it with ``python -m backend runs show N``.
"""

from __future__ import annotations

import argparse
import sys

from backend import runs
from backend.training.config import ConfigError, add_config_arguments, merge_args

EXIT_INVALID = 2  # as ``train``: invalid options, nothing queued


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def main(args: argparse.Namespace) -> int:
    try:
        run_id = runs.launch(merge_args(args))
    except ConfigError as e:
        print(f"error: invalid training options: {e}", file=sys.stderr)
        return EXIT_INVALID
    print(run_id)
    return 0
