"""The ``ray`` executor: the trainer runs as a Ray job on a cluster (``ray.job_submission``).

The job's entrypoint is the same ``python -m backend train --run-id N`` a local run starts; its
runtime environment carries ``RUNS_DB_URL``, ``ARTIFACTS_DIR`` and ``DATA_DIR``, so the trainer
reports to the shared store and writes checkpoints to the shared artifacts folder (see docs/TEAM.md:
both must be reachable from every node, and the checkout and its venv must sit at the same path).
Cancel is ``stop_job``: Ray sends the trainer SIGTERM (it stops at the next batch and records
``cancelled``), then SIGKILL. Ray is imported only when a run uses this executor.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
import uuid

from backend import config, store
from backend.errors import WorkbenchError
from backend.runs.executors.base import REPO_ROOT, Executor, Started, training_command

RAY_ADDRESS_ENV = "RAY_ADDRESS"
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
POLL_INTERVAL_S = 0.25
STOP_WAIT_S = 30.0  # after the grace period: how long Ray may take to report the job stopped
FINISHED = frozenset({"STOPPED", "SUCCEEDED", "FAILED"})
PASSED_ENV = ("MAX_CONCURRENT_RUNS", "OMP_NUM_THREADS", "HEARTBEAT_INTERVAL_S", "HEARTBEAT_TIMEOUT_S",
              "ANOMALY_DEBUG")  # fmt: skip


class ExecutorError(WorkbenchError, RuntimeError):
    """The cluster could not be reached or refused the request (the message names its address)."""


def default_address() -> str:
    """``RAY_ADDRESS`` if set, else the job API of a head on this machine."""
    return os.environ.get(RAY_ADDRESS_ENV) or DEFAULT_ADDRESS


def job_api_address(address: str) -> str:
    """The job API URL (the head's dashboard) of ``address``: ``host:port`` gets ``http://``."""
    address = address.strip()
    if address.startswith("ray://"):
        raise ExecutorError(f"Ray address {address!r} is a Ray Client address; give the head's job API "
                            "(its dashboard), e.g. http://HEAD:8265")  # fmt: skip
    return address if "://" in address else f"http://{address}"


def _client(address: str):
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as e:
        raise ExecutorError("the ray executor needs Ray: pip install 'ray[default]==2.60.0'") from e
    try:
        return JobSubmissionClient(job_api_address(address))
    except Exception as e:  # ConnectionError, RuntimeError: Ray raises several kinds
        raise ExecutorError(f"cannot reach the Ray cluster at {address}: {_one_line(e)}") from e


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def runtime_env() -> dict:
    """What the job inherits: where the store, the artifacts and the datasets are."""
    env = {
        "RUNS_DB_URL": config.runs_db_url(),
        "ARTIFACTS_DIR": str(config.artifacts_dir().resolve()),
        "DATA_DIR": str(config.data_dir().resolve()),
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.update({name: os.environ[name] for name in PASSED_ENV if name in os.environ})
    return {"env_vars": env}


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None):
        self.address = address

    def start(self, run: store.RunRecord) -> Started:
        address = run.executor_address or self.address or default_address()
        client = _client(address)
        job_id = f"awb-run-{run.id}-{uuid.uuid4().hex[:8]}"
        # exec: the trainer replaces the shell, so the SIGTERM of stop_job reaches it
        entrypoint = f"cd {shlex.quote(str(REPO_ROOT))} && exec {shlex.join(training_command(run.id))}"
        try:
            client.submit_job(entrypoint=entrypoint, submission_id=job_id, runtime_env=runtime_env(),
                              metadata={"workbench_run": str(run.id)})  # fmt: skip
        except Exception as e:
            raise ExecutorError(f"the Ray cluster at {address} refused run {run.id}'s job: {_one_line(e)}") from e
        return Started(job_id=job_id, address=address)

    def status(self, run: store.RunRecord) -> str | None:
        """The job's status name (PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED); None if unknown."""
        if not run.executor_job_id:
            return None
        try:
            return str(_client(run.executor_address or default_address()).get_job_status(run.executor_job_id).value)
        except Exception:
            return None  # unreachable cluster: unknown, never "dead"

    def job_alive(self, run: store.RunRecord) -> bool:
        return self.status(run) not in FINISHED

    def job_logs(self, run: store.RunRecord) -> str | None:
        if not run.executor_job_id:
            return None
        with contextlib.suppress(Exception):
            return _client(run.executor_address or default_address()).get_job_logs(run.executor_job_id)
        return None

    def stop(self, run: store.RunRecord, grace: float) -> None:
        """``stop_job`` (SIGTERM to the trainer, SIGKILL after Ray's own wait), then wait until Ray
        reports the job finished, at most ``grace`` + ``STOP_WAIT_S`` seconds."""
        if not run.executor_job_id:
            return
        address = run.executor_address or default_address()
        client = _client(address)
        try:
            client.stop_job(run.executor_job_id)
        except Exception as e:
            raise ExecutorError(f"the Ray cluster at {address} could not stop job {run.executor_job_id}: "
                                f"{_one_line(e)}") from e  # fmt: skip
        deadline = time.monotonic() + grace + STOP_WAIT_S
        while time.monotonic() < deadline and self.status(run) not in FINISHED:
            time.sleep(POLL_INTERVAL_S)
