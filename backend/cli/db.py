"""``python -m backend db current|upgrade``: the run store's schema revision (Alembic, backend/migrations/).

Any command upgrades the store on first use; ``upgrade`` does it on purpose (say, before a team's
dashboards restart) and ``current`` only reads. Both act on ``RUNS_DB_URL``.
"""

from __future__ import annotations

import argparse

from backend import store
from backend.config import runs_db_url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("current", help="print the store's schema revision and this code's newest (changes nothing)")
    actions.add_parser("upgrade", help="upgrade the store to this code's newest revision")


def main(args: argparse.Namespace) -> int:
    url = runs_db_url()
    if args.action == "current":
        print(f"{store.masked_url(url)}: {_describe(store.schema_state(url))}")
        return 0
    before, after = store.upgrade_schema(url)
    if before.current:
        print(f"{store.masked_url(url)}: already at {after.revision}")
    else:
        print(f"{store.masked_url(url)}: upgraded from {_revision_name(before)} to {after.revision}")
    return 0


def _revision_name(state: store.SchemaState) -> str:
    if state.revision is not None:
        return state.revision
    return "the schema before migrations" if state.has_tables else "an empty database"


def _describe(state: store.SchemaState) -> str:
    if state.current:
        return f"{state.revision} (newest)"
    return f"{_revision_name(state)}; newest is {state.head}: run `python -m backend db upgrade`"
