"""Executors: where a run's trainer runs. ``local`` (a subprocess here, the default) or ``ray`` (a
job on a Ray cluster). A run's executor is chosen at launch and stored in its row."""

from __future__ import annotations

import os

from backend.errors import WorkbenchError
from backend.runs.executors.base import Executor, Started

EXECUTORS = ("local", "ray")
EXECUTOR_ENV = "RUN_EXECUTOR"


class UnknownExecutor(WorkbenchError, ValueError):
    """An executor name that is not one of ``EXECUTORS``."""


def default_executor() -> str:
    """``RUN_EXECUTOR`` if set, else ``local``."""
    return check_name(os.environ.get(EXECUTOR_ENV) or "local")


def check_name(name: str) -> str:
    if name not in EXECUTORS:
        raise UnknownExecutor(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)} "
                              f"(set by --executor or {EXECUTOR_ENV})")  # fmt: skip
    return name


def get_executor(name: str, address: str | None = None) -> Executor:
    """The executor called ``name`` (``address``: the Ray cluster's job API, for ``ray``)."""
    if check_name(name) == "ray":
        from backend.runs.executors.ray import RayExecutor

        return RayExecutor(address)
    from backend.runs.executors.local import LocalExecutor

    return LocalExecutor()


__all__ = ["EXECUTORS", "Executor", "Started", "UnknownExecutor", "default_executor", "get_executor"]
