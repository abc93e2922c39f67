"""``python -m backend launch [train options] [--executor local|ray] [--ray-address URL]``: queue a
training run in the background, print its id.

Takes exactly the options of ``python -m backend train`` (the same ``add_config_arguments``), validates
them, and returns as soon as the run is queued or started; the run goes on after this command ends.
``--executor`` picks where it trains (default ``RUN_EXECUTOR``, else ``local``); ``--ray-address``
the Ray cluster's job API (default ``RAY_ADDRESS``). Follow it with ``python -m backend runs show N``.
"""

from __future__ import annotations

import argparse
import sys

from backend import runs
from backend.runs.executors import EXECUTORS
from backend.training.config import ConfigError, add_config_arguments, merge_args

EXIT_INVALID = 2  # as ``train``: invalid options, nothing queued


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--executor", choices=EXECUTORS, default=None,
                        help="where the run trains: local subprocess or a Ray cluster job (default: "
                             "RUN_EXECUTOR, else local)")  # fmt: skip
    parser.add_argument("--ray-address", metavar="URL", default=None,
                        help="the Ray cluster's job API, e.g. http://HEAD:8265 (default: RAY_ADDRESS)")


def main(args: argparse.Namespace) -> int:
    try:  # merge_args keeps training options only: --executor and --ray-address go to the run row
        run_id = runs.launch(merge_args(args), executor=args.executor, address=args.ray_address)
    except ConfigError as e:
        print(f"error: invalid training options: {e}", file=sys.stderr)
        return EXIT_INVALID
    print(run_id)
    return 0
