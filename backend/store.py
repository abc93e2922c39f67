"""The run store: every training run, its per-epoch metrics, per-class metrics, confusion matrices and
evaluations, in one SQL database shared by training processes and the dashboard.

Training processes write (one writer each) while the dashboard reads; on SQLite that works because
every connection runs in WAL mode with a long busy timeout, so a writer waits its turn instead of
failing with ``database is locked``. The schema uses only portable SQL, so ``RUNS_DB_URL`` may also
point at PostgreSQL (``postgresql+psycopg://user:pass@host:port/db``); the store tests run on both
(tests/fixtures/services.py). Values read back the same from either: timestamps UTC-aware, a NaN
stored as NULL (in JSON columns too), ids never handed out twice.

Query functions return plain objects (``RunRecord``) or pandas DataFrames, never live ORM rows, so
callers (Streamlit pages, caches) can hold results after the session is gone. No torch here: the
dashboard reads runs without importing it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DataError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import NullPool

from backend import migrations
from backend.config import runs_db_url
from backend.errors import WorkbenchError

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "lost")
ACTIVE = frozenset({"queued", "running"})

SQLITE_BUSY_TIMEOUT_MS = 30_000
SERVER_CONNECT_TIMEOUT_S = 10  # PostgreSQL: how long to try reaching the server before saying it is down


class StoreError(WorkbenchError):
    """A read or write the run store refused, with a message saying why."""


class RunNotFound(StoreError):
    """No run with the requested id."""


def utcnow() -> datetime:
    """Current time, timezone-aware UTC: the only clock the store writes."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite drops the offset of ``DateTime(timezone=True)`` values, so values are normalised to UTC
    on the way in (naive values are taken to be UTC) and UTC is re-attached on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @staticmethod
    def _as_utc(value: datetime | None) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        return self._as_utc(value)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return self._as_utc(value)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _run_fk() -> Mapped[int]:
    """The ``run_id`` column of a child table: deleting a run deletes its rows in the database."""
    return mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)


def _evaluation_fk() -> Mapped[int | None]:
    """The optional ``evaluation_id`` of a child table: NULL means the run's own end-of-training test."""
    return mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), nullable=True)


class Run(Base):
    """One training run: what it trains, where it stands, and its best result so far."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        Index(None, "status"),
        Index(None, "model"),
        Index(None, "created_at"),
        Index(None, "dataset"),
        {"sqlite_autoincrement": True},  # a deleted run's id is never handed out again
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    dataset: Mapped[str] = mapped_column(String(1000))
    class_names: Mapped[list | None] = mapped_column(JSON)
    class_counts: Mapped[dict | None] = mapped_column(JSON)  # {"train": {...}, "test": {...}}
    device: Mapped[str | None] = mapped_column(String(100))
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_start_time: Mapped[float | None] = mapped_column(Float)  # detects a reused pid
    host: Mapped[str | None] = mapped_column(String(255))  # hostname of the trainer that claimed the run
    num_params: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    current_epoch: Mapped[int | None] = mapped_column(Integer)
    total_epochs: Mapped[int | None] = mapped_column(Integer)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    best_val_f1: Mapped[float | None] = mapped_column(Float)
    best_val_acc: Mapped[float | None] = mapped_column(Float)
    best_metrics: Mapped[dict | None] = mapped_column(JSON)
    train_acc_at_best: Mapped[float | None] = mapped_column(Float)
    checkpoint_path: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    # Honest comparison (docs/COMPARISON.md). NULL selection_split = stored before validation
    # selection existed: its best epoch was picked on test ("selected on test").
    selection_split: Mapped[str | None] = mapped_column(String(20))
    split_counts: Mapped[dict | None] = mapped_column(JSON)  # {"train": n, "val": n, "test": n, "duplicates_removed": {...}}
    test_metrics: Mapped[dict | None] = mapped_column(JSON)  # bootstrap_metrics(...) + ece, ece_uncalibrated, epoch, reliability
    temperature: Mapped[float | None] = mapped_column(Float)  # fitted on validation; NULL = uncalibrated
    # Team use (migration 0004_team, docs/TEAM.md): where the run trains and whether it is alive.
    executor: Mapped[str] = mapped_column(String(20), default="local", server_default="local")
    executor_address: Mapped[str | None] = mapped_column(String(500))  # e.g. the Ray cluster's job API URL
    executor_job_id: Mapped[str | None] = mapped_column(String(200))  # e.g. the Ray job's submission id
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # written every few seconds while training
    # Lineage (docs/RUNS.md): the dataset's state when the run trained; NULL = stored before it was kept.
    dataset_fingerprint: Mapped[str | None] = mapped_column(String(64))


class SchedulerLock(Base):
    """One row (id 1) that deciders lock (``SELECT ... FOR UPDATE``) while they start queued runs, so
    the concurrency limit holds across processes and hosts sharing a server database."""

    __tablename__ = "scheduler"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RunTag(Base):
    """One tag of one run (``baseline``, ``paper``...): a team's way to organise its runs."""

    __tablename__ = "run_tags"
    __table_args__ = (UniqueConstraint("run_id", "tag"), Index(None, "tag"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    tag: Mapped[str] = mapped_column(String(64))


class EpochMetric(Base):
    """One epoch of one run; ``extra`` holds loss components such as the VAE's recon and KL."""

    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("run_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float | None] = mapped_column(Float)
    train_acc: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_acc: Mapped[float | None] = mapped_column(Float)
    val_precision: Mapped[float | None] = mapped_column(Float)
    val_recall: Mapped[float | None] = mapped_column(Float)
    val_f1: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict | None] = mapped_column(JSON)


class Evaluation(Base):
    """A run's checkpoint evaluated on a labelled folder (possibly not its training dataset)."""

    __tablename__ = "evaluations"
    __table_args__ = (Index(None, "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    dataset: Mapped[str] = mapped_column(String(1000))
    tta: Mapped[str] = mapped_column(String(50), default="none")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)  # accuracy, macro_precision/recall/f1, n_samples


class ClassMetric(Base):
    """Precision, recall, F1 and support of one class, for a run's test set or one evaluation."""

    __tablename__ = "class_metrics"
    __table_args__ = (Index(None, "run_id", "evaluation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    evaluation_id: Mapped[int | None] = _evaluation_fk()
    class_name: Mapped[str] = mapped_column(String(200))
    precision: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    f1: Mapped[float | None] = mapped_column(Float)
    support: Mapped[int | None] = mapped_column(Integer)


class ConfusionMatrix(Base):
    """A confusion matrix (rows = true class, columns = predicted) stored whole as JSON."""

    __tablename__ = "confusion_matrices"
    __table_args__ = (Index(None, "run_id", "evaluation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    evaluation_id: Mapped[int | None] = _evaluation_fk()
    class_names: Mapped[list] = mapped_column(JSON)
    matrix: Mapped[list] = mapped_column(JSON)


@dataclass
class RunRecord:
    """A detached copy of one ``runs`` row (JSON columns decoded, timestamps UTC-aware)."""

    id: int
    name: str
    model: str
    status: str
    config: dict
    dataset: str
    class_names: list | None
    class_counts: dict | None
    device: str | None
    pid: int | None
    pid_start_time: float | None
    host: str | None
    num_params: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    current_epoch: int | None
    total_epochs: int | None
    best_epoch: int | None
    best_val_f1: float | None
    best_val_acc: float | None
    best_metrics: dict | None
    train_acc_at_best: float | None
    checkpoint_path: str | None
    error: str | None
    notes: str | None
    selection_split: str | None
    split_counts: dict | None
    test_metrics: dict | None
    temperature: float | None
    executor: str = "local"
    executor_address: str | None = None
    executor_job_id: str | None = None
    heartbeat_at: datetime | None = None
    dataset_fingerprint: str | None = None


RUN_COLUMNS = tuple(Run.__table__.columns.keys())
EPOCH_COLUMNS = tuple(c for c in EpochMetric.__table__.columns.keys() if c != "id")
LIST_RUN_COLUMNS = (
    "id", "name", "model", "status", "dataset", "created_at", "started_at", "finished_at",
    "current_epoch", "total_epochs", "best_epoch", "best_val_f1", "best_val_acc", "train_acc_at_best",
    "num_params", "device", "error", "selection_split", "test_metrics", "temperature", "executor", "host",
)  # fmt: skip
CLASS_METRIC_COLUMNS = ("class_name", "precision", "recall", "f1", "support")
EVALUATION_COLUMNS = tuple(Evaluation.__table__.columns.keys())


# --- engine and sessions -------------------------------------------------------------------------

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _json_default(value: Any) -> Any:
    """Let numpy scalars/arrays and paths into JSON columns (metrics often arrive as numpy)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity (numpy ones too) replaced by None, so JSON columns hold
    standard JSON: PostgreSQL rejects ``NaN``, and SQLite would keep a token no other reader parses."""
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_safe(item) for item in value]
    return value


def _json_dumps(value: Any) -> str:
    """The JSON columns' serialiser: numpy and paths accepted, non-finite numbers stored as null."""
    return json.dumps(_json_safe(value), default=_json_default, allow_nan=False)


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    """Per-connection SQLite settings that let one writer per process and many readers coexist.

    busy_timeout goes first so that switching to WAL waits for a lock instead of failing.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def masked_url(url: str) -> str:
    """``url`` with any password hidden: the only form of it a message may show."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(an unparseable URL)"


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases, in-memory ones and bad URLs."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


@contextmanager
def _store_errors(url: str, *, opening: bool = False) -> Iterator[None]:
    """Turn a failure of the database itself into a ``StoreError`` naming the store (password masked).

    ``opening``: also a bad URL, a missing driver, an unreachable server or a lock never obtained.
    A file that is not a database, or a damaged one, gets the advice to move it away.
    """
    failures: tuple[type[BaseException], ...] = (SQLAlchemyError,)
    if opening:
        failures += (ImportError, OSError, Timeout, ValueError)
    try:
        yield
    except StoreError:
        raise
    except failures as e:
        cause = getattr(e, "orig", None) or e
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        damaged = isinstance(e, DatabaseError) and not isinstance(e, OperationalError)
        if not (opening or damaged):
            raise StoreError(f"the run store {masked_url(url)} failed: {reason}") from e
        remedy = "move this file away to start a new one" if _sqlite_file(url) else "check that its server is up"
        raise StoreError(
            f"the run store {masked_url(url)} cannot be used ({reason}); point RUNS_DB_URL at a workbench "
            f"database, or {remedy}"
        ) from e


def _create_engine(url: str, *, migrating: bool = False) -> Engine:
    """A new engine for ``url``; for a SQLite file, its folder is created and pragmas hooked.

    ``migrating``: a throwaway engine for checking and upgrading the schema. It sets no pragmas: WAL
    would rewrite a database that may have to be left untouched, and SQLite migrations must run with
    foreign keys off (rebuilding ``runs`` with them on would cascade into every child table).
    """
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"poolclass": NullPool} if migrating else {}
    if is_sqlite:
        connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        # A server: give up on an unreachable host after a while (one clear error, not a hang), and
        # test pooled connections before use, so a dashboard outlives a server restart.
        # Sessions in UTC: psycopg then returns datetime.timezone.utc values, which need no conversion
        # (a server's zone, even Etc/UTC, comes back as a ZoneInfo that costs ~4 us per value to convert).
        connect_args = (
            {"connect_timeout": SERVER_CONNECT_TIMEOUT_S, "options": "-c TimeZone=UTC"}
            if parsed.get_driver_name() == "psycopg"
            else {}
        )
        options.setdefault("pool_pre_ping", True)
    engine = create_engine(
        url,
        connect_args=connect_args,
        json_serializer=_json_dumps,
        **options,
    )
    if is_sqlite and not migrating:
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: ``RUNS_DB_URL`` read now), created once per process.

    The first use of a URL brings its schema to the newest revision (``upgrade_schema``), so every
    caller sees the tables the code expects.
    """
    url = url or runs_db_url()
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            upgrade_schema(url)
            with _store_errors(url, opening=True):
                engine = _create_engine(url)
            _engines[url] = engine
    return engine


def init_db(url: str | None = None) -> None:
    """Make sure the database exists at the newest schema revision (``get_engine`` already does this)."""
    get_engine(url)


# --- schema revisions (Alembic scripts in backend/migrations/) ------------------------------------

MIGRATION_LOCK_TIMEOUT_S = 600.0
PG_MIGRATION_LOCK_ID = 0x416E6F6D616C79  # pg_advisory_lock key of schema changes ("Anomaly")


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: its recorded revision (None: none recorded) and this code's newest."""

    revision: str | None
    head: str
    has_tables: bool  # our tables exist (with no revision: the release before migrations)

    @property
    def current(self) -> bool:
        return self.revision == self.head


def schema_state(url: str | None = None) -> SchemaState:
    """The database's schema revision, read without changing anything (a missing SQLite file stays missing)."""
    url = url or runs_db_url()
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists():
        return SchemaState(revision=None, head=migrations.head_revision(), has_tables=False)
    with _store_errors(url, opening=True), _migration_connection(url) as conn:
        return _read_state(conn)


def upgrade_schema(url: str | None = None) -> tuple[SchemaState, SchemaState]:
    """Bring the database to the newest revision; return its state before and after.

    An empty database is created at the newest revision; one made by the release before migrations
    (our tables, no revision) is stamped ``0001_baseline`` and upgraded in place, keeping every row;
    one whose revision this code does not know (a newer release) is refused and left untouched.
    Processes opening the same database at once take turns (a lock file beside a SQLite file,
    ``pg_advisory_lock`` on PostgreSQL); the one that comes second finds nothing left to do.
    """
    url = url or runs_db_url()
    with _store_errors(url, opening=True), _migration_connection(url) as conn:
        before = _read_state(conn)
        if before.current:
            return before, before
        with _schema_lock(conn, url):
            before = _read_state(conn)  # another process may have upgraded it while this one waited
            if not before.current:
                if before.revision is None and before.has_tables:
                    migrations.stamp(conn, migrations.BASELINE)
                migrations.upgrade(conn)
                conn.commit()
            return before, _read_state(conn)


@contextmanager
def _migration_connection(url: str) -> Iterator[Connection]:
    """One connection of a throwaway engine (no pragmas, foreign keys off on SQLite)."""
    engine = _create_engine(url, migrating=True)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside any transaction, or it is ignored
            yield conn
    finally:
        engine.dispose()


def _read_state(conn: Connection) -> SchemaState:
    """The state of the database on ``conn``; ``StoreError`` when its revision is unknown here."""
    conn.rollback()  # end any read transaction, so the state is read fresh
    state = SchemaState(
        revision=migrations.current_revision(conn),
        head=migrations.head_revision(),
        has_tables=inspect(conn).has_table(Run.__tablename__),
    )
    if state.revision is not None and state.revision not in migrations.known_revisions():
        raise StoreError(
            f"the run store {masked_url(str(conn.engine.url))} has schema revision {state.revision!r}, which this "
            f"code does not know (its newest is {state.head!r}): it was written by a newer release; update "
            "this checkout, or point RUNS_DB_URL at another database. The store was left as it is."
        )
    return state


@contextmanager
def _schema_lock(conn: Connection, url: str) -> Iterator[None]:
    """Let one process at a time change the schema of this database."""
    sqlite_file = _sqlite_file(url)
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK_ID})
        conn.commit()
        try:
            yield
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK_ID})
            conn.commit()
    elif sqlite_file is not None:
        with FileLock(sqlite_file.with_name(sqlite_file.name + "-migrate.lock"), timeout=MIGRATION_LOCK_TIMEOUT_S):
            yield
    else:
        yield


# --- sessions -------------------------------------------------------------------------------------


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    Integrity errors (bad status, missing run, duplicate row) become ``StoreError``, and so does a
    database that cannot be read (the URL named, its password masked).
    """
    url = url or runs_db_url()
    session = Session(get_engine(url), expire_on_commit=False)
    try:
        with _store_errors(url):
            try:
                yield session
                session.commit()
            except (IntegrityError, DataError) as e:  # DataError: a value the column cannot hold (PostgreSQL)
                session.rollback()
                reason = str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else type(e.orig).__name__
                raise StoreError(f"the run store rejected the change: {reason}") from e
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --- runs ----------------------------------------------------------------------------------------


def _check_fields(fields_: Iterable[str], allowed: Iterable[str], what: str) -> None:
    """Reject unknown column names with the list of valid ones (a typo must not pass silently)."""
    unknown = sorted(set(fields_) - set(allowed))
    if unknown:
        raise StoreError(f"unknown {what} field(s): {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")


def _check_lengths(model: type[Base], values: Mapping[str, Any], what: str) -> None:
    """Refuse a text longer than its column (PostgreSQL enforces ``VARCHAR(n)``, SQLite does not), so
    both databases accept the same values and the message names the field."""
    for key, value in values.items():
        column = model.__table__.c.get(key)
        length = getattr(column.type, "length", None) if column is not None else None
        if isinstance(value, str) and length is not None and len(value) > length:
            raise StoreError(f"{what} field {key!r} is {len(value)} characters long; the store keeps at most {length}")


def _plain(value: Any) -> Any:
    """Numpy scalars to Python numbers, so drivers accept them as column values; a NaN becomes NULL
    (what SQLite stores for it anyway; PostgreSQL would keep a NaN that reads differently)."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and value != value else value


def create_run(
    *,
    name: str,
    model: str,
    config: dict,
    dataset: str,
    status: str = "queued",
    class_names: list[str] | None = None,
    class_counts: dict | None = None,
    executor: str = "local",
    url: str | None = None,
) -> int:
    """Insert a run row and return its id."""
    _check_lengths(Run, {"name": name, "model": model, "dataset": str(dataset), "status": status}, "run")
    run = Run(
        name=name,
        executor=executor,
        model=model,
        config=dict(config),
        dataset=str(dataset),
        status=status,
        class_names=list(class_names) if class_names is not None else None,
        class_counts=class_counts,
        created_at=utcnow(),
    )
    with session_scope(url) as session:
        session.add(run)
        session.flush()
        return run.id


def update_run(run_id: int, *, url: str | None = None, **fields_: Any) -> None:
    """Set columns of one run by name, e.g. ``update_run(3, status="running", started_at=utcnow())``."""
    _check_fields(fields_, set(RUN_COLUMNS) - {"id"}, "run")
    if not fields_:
        return
    values = {key: _plain(value) for key, value in fields_.items()}
    _check_lengths(Run, values, "run")
    with session_scope(url) as session:
        result = session.execute(update(Run).where(Run.id == run_id).values(**values))
        if result.rowcount == 0:
            raise RunNotFound(f"run {run_id} not found")


def update_run_if(run_id: int, statuses: Iterable[str], *, running_pid: int | None = None,
                  url: str | None = None, **fields_: Any) -> bool:
    """Compare-and-set: set ``fields_`` only while the run's status is one of ``statuses``.

    With ``running_pid``, a run that is ``running`` in that very process also matches (a trainer
    claiming the run the run manager already marked running for it). One UPDATE ... WHERE, so of
    two processes racing on the same run (a cancel and a claim, say) exactly one wins. Returns
    whether this call changed the row.
    """
    _check_fields(fields_, set(RUN_COLUMNS) - {"id"}, "run")
    matches = Run.status.in_(sorted(statuses))
    if running_pid is not None:
        matches = matches | ((Run.status == "running") & (Run.pid == running_pid))
    values = {key: _plain(value) for key, value in fields_.items()}
    _check_lengths(Run, values, "run")
    with session_scope(url) as session:
        result = session.execute(update(Run).where(Run.id == run_id, matches).values(**values))
    return result.rowcount == 1


def get_run(run_id: int, url: str | None = None) -> RunRecord:
    """A detached copy of one run; ``RunNotFound`` if there is none."""
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        if run is None:
            raise RunNotFound(f"run {run_id} not found")
        return RunRecord(**{f.name: getattr(run, f.name) for f in fields(RunRecord)})


def _as_list(value: str | Iterable[str] | None) -> list[str] | None:
    """A filter value given as one string or several."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _columns(model: type[Base], names: Iterable[str]) -> list:
    """Table columns of ``model`` by name, in the given order (what a query selects)."""
    return [model.__table__.c[name] for name in names]


def _select_frame(query, url: str | None) -> pd.DataFrame:
    """Run a column query into a DataFrame; float columns stay float (NaN, not None) and timestamps
    become UTC datetimes, also when a column is all NULL or the result is empty."""
    url = url or runs_db_url()
    engine = get_engine(url)
    with _store_errors(url), engine.connect() as conn:  # Core, not the ORM: no per-row entity bookkeeping
        rows = [tuple(row) for row in conn.execute(query).all()]
    frame = pd.DataFrame.from_records(rows, columns=[c.name for c in query.selected_columns])
    for column in query.selected_columns:
        if isinstance(column.type, Float):
            frame[column.name] = frame[column.name].astype("float64")
        elif isinstance(column.type, UTCDateTime):
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True).astype("datetime64[us, UTC]")
    return frame


def list_runs(
    *,
    status: str | Iterable[str] | None = None,
    model: str | Iterable[str] | None = None,
    dataset: str | Iterable[str] | None = None,
    tag: str | Iterable[str] | None = None,
    limit: int | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Runs newest first, one row each, filtered by status/model/dataset (each one value or several)
    and by ``tag`` (a run carrying any of the tags given).

    Columns: ``LIST_RUN_COLUMNS`` plus ``duration_s`` (finished, or now, minus started; NaN when the
    run never started) and ``tags`` (the run's tags, a sorted list).
    """
    query = select(*_columns(Run, LIST_RUN_COLUMNS))
    for column, wanted in ((Run.status, status), (Run.model, model), (Run.dataset, dataset)):
        values = _as_list(wanted)
        if values is not None:
            query = query.where(column.in_(values))
    tags = _as_list(tag)
    if tags is not None:
        query = query.where(Run.id.in_(select(RunTag.run_id).where(RunTag.tag.in_(tags))))
    query = query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
    frame = _select_frame(query, url)
    end = frame["finished_at"].fillna(pd.Timestamp.now(tz="UTC"))
    frame["duration_s"] = (end - frame["started_at"]).dt.total_seconds()
    # Few runs: their tags by id; many: every tag row in one query (no IN list of thousands of ids).
    by_run = tags_by_run(frame["id"].tolist() if len(frame) <= 500 else None, url=url) if len(frame) else {}
    frame["tags"] = [by_run.get(int(run_id), []) for run_id in frame["id"]]
    return frame


# --- names, notes and tags (a team organising its runs) -------------------------------------------

MAX_NAME_LENGTH = 200
MAX_TAG_LENGTH = 64
MAX_NOTES_LENGTH = 20_000
_TAG_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.:/")


def check_name(name: str) -> str:
    """A run name as stored: stripped, not empty, at most ``MAX_NAME_LENGTH`` characters, one line."""
    cleaned = (name or "").strip()
    if not cleaned:
        raise StoreError("a run name cannot be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise StoreError(f"a run name is at most {MAX_NAME_LENGTH} characters (got {len(cleaned)})")
    if any(c in cleaned for c in "\r\n\t"):
        raise StoreError("a run name is one line of text")
    return cleaned


def check_tag(tag: str) -> str:
    """A tag as stored: lower case, 1-64 characters of letters, digits and ``- _ . : /``."""
    cleaned = (tag or "").strip().lower()
    if not cleaned:
        raise StoreError("a tag cannot be empty")
    if len(cleaned) > MAX_TAG_LENGTH:
        raise StoreError(f"a tag is at most {MAX_TAG_LENGTH} characters (got {len(cleaned)}): {cleaned[:20]}...")
    bad = sorted(set(cleaned) - _TAG_CHARACTERS)
    if bad:
        raise StoreError(
            f"tag {cleaned!r} has characters a tag cannot have ({' '.join(map(repr, bad))}); use letters, digits "
            "and - _ . : /"
        )
    return cleaned


def rename_run(run_id: int, name: str, url: str | None = None) -> str:
    """Give a run a new name (validated by ``check_name``); returns the name stored."""
    cleaned = check_name(name)
    update_run(run_id, name=cleaned, url=url)
    return cleaned


def set_notes(run_id: int, text_: str | None, url: str | None = None) -> None:
    """Replace a run's notes (markdown); empty text clears them."""
    cleaned = (text_ or "").strip()
    if len(cleaned) > MAX_NOTES_LENGTH:
        raise StoreError(f"notes are at most {MAX_NOTES_LENGTH} characters (got {len(cleaned)})")
    update_run(run_id, notes=cleaned or None, url=url)


def tag_run(run_id: int, *, add: Iterable[str] = (), remove: Iterable[str] = (), url: str | None = None) -> list[str]:
    """Add and remove tags of one run in one transaction; returns its tags afterwards, sorted.

    Adding a tag the run has, or removing one it lacks, is not an error (the call can be repeated).
    """
    added = {check_tag(t) for t in add}
    removed = {check_tag(t) for t in remove}
    both = sorted(added & removed)
    if both:
        raise StoreError(f"tag(s) both added and removed: {', '.join(both)}")
    with session_scope(url) as session:
        if session.get(Run, run_id) is None:
            raise RunNotFound(f"run {run_id} not found")
        if removed:
            session.execute(delete(RunTag).where(RunTag.run_id == run_id, RunTag.tag.in_(sorted(removed))))
        present = set(session.scalars(select(RunTag.tag).where(RunTag.run_id == run_id)))
        session.add_all(RunTag(run_id=run_id, tag=t) for t in sorted(added - present))
        session.flush()
        return sorted(session.scalars(select(RunTag.tag).where(RunTag.run_id == run_id)))


def run_tags(run_id: int, url: str | None = None) -> list[str]:
    """One run's tags, sorted."""
    return tags_by_run([run_id], url=url).get(int(run_id), [])


def tags_by_run(run_ids: Iterable[int] | None, url: str | None = None) -> dict[int, list[str]]:
    """``{run_id: sorted tags}`` for the runs given, or for every run with ``None`` (runs without tags
    are left out)."""
    query = select(RunTag.run_id, RunTag.tag).order_by(RunTag.tag)
    if run_ids is not None:
        query = query.where(RunTag.run_id.in_([int(i) for i in run_ids]))
    with session_scope(url) as session:
        rows = session.execute(query)
        result: dict[int, list[str]] = {}
        for run_id, tag in rows:
            result.setdefault(run_id, []).append(tag)
    return result


def all_tags(url: str | None = None) -> list[str]:
    """Every tag in use, sorted (what a filter offers)."""
    with session_scope(url) as session:
        return sorted(session.scalars(select(RunTag.tag).distinct()))


def count_runs_by_status(url: str | None = None) -> dict[str, int]:
    """How many runs are in each status (every status present, zero included)."""
    with session_scope(url) as session:
        rows = session.execute(select(Run.status, func.count()).group_by(Run.status)).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: count for status, count in rows})
    return counts


def delete_run_rows(run_id: int, url: str | None = None) -> None:
    """Delete a run and, by cascade, all its epochs, class metrics, matrices and evaluations.

    Deleting a run that is already gone is not an error (deletion may be retried).
    """
    with session_scope(url) as session:
        session.execute(delete(Run).where(Run.id == run_id))


@contextmanager
def scheduler_row_lock(url: str | None = None) -> Iterator[bool]:
    """Hold the scheduler row (``SELECT ... FOR UPDATE`` on ``scheduler`` id 1) while the block runs.

    On a server database (PostgreSQL) this serialises every decider on every host: the row stays
    locked until the block ends and its transaction commits. Yields True there; SQLite has no row
    locks (``FOR UPDATE`` is dropped), so it yields False and the caller keeps its file lock.
    """
    url = url or runs_db_url()
    with session_scope(url) as session:
        if session.get_bind().dialect.name == "sqlite":
            yield False
            return
        query = select(SchedulerLock).where(SchedulerLock.id == 1).with_for_update()
        row = session.execute(query).scalar_one_or_none()
        if row is None:  # a store whose row was removed by hand: put it back, then lock it
            session.add(SchedulerLock(id=1, updated_at=utcnow()))
            session.flush()
            row = session.execute(query).scalar_one()
        row.updated_at = utcnow()
        session.flush()
        yield True


def heartbeat(run_id: int, url: str | None = None) -> bool:
    """Record that run ``run_id``'s trainer is alive now; False once the run is no longer active."""
    return update_run_if(run_id, ACTIVE, url=url, heartbeat_at=utcnow())


# --- epochs --------------------------------------------------------------------------------------


def log_epoch(run_id: int, row: Mapping[str, Any], url: str | None = None) -> None:
    """Store one epoch's metrics, replacing any earlier row for the same epoch, and set the run's
    ``current_epoch``.

    ``row`` keys are EpochMetric columns (``epoch`` required); ``extra`` is a dict of loss components.
    """
    _check_fields(row, set(EPOCH_COLUMNS) - {"run_id"}, "epoch")
    if "epoch" not in row:
        raise StoreError("log_epoch needs an 'epoch' value")
    values = {key: _plain(value) for key, value in row.items()}
    epoch = int(values["epoch"])
    values |= {"run_id": run_id, "epoch": epoch}
    with session_scope(url) as session:
        dialect_insert = _UPSERTS.get(session.get_bind().dialect.name)
        if dialect_insert is not None:
            # One statement: insert, or replace every column of the existing (run, epoch) row (columns
            # not given become NULL); two writers of one epoch never collide on the unique constraint.
            statement = dialect_insert(EpochMetric).values(**values)
            replaced = {name: statement.excluded[name] for name in EPOCH_COLUMNS if name not in ("run_id", "epoch")}
            session.execute(statement.on_conflict_do_update(index_elements=["run_id", "epoch"], set_=replaced))
        else:  # another database: delete then insert, in one transaction
            session.execute(delete(EpochMetric).where(EpochMetric.run_id == run_id, EpochMetric.epoch == epoch))
            session.execute(insert(EpochMetric).values(**values))
        session.execute(update(Run).where(Run.id == run_id).values(current_epoch=epoch))


_UPSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}  # dialects with INSERT ... ON CONFLICT


def _history(where, url: str | None) -> pd.DataFrame:
    """Epoch rows matching ``where`` in one query, ordered by run then epoch, extras expanded."""
    query = select(*_columns(EpochMetric, EPOCH_COLUMNS)).where(where).order_by(EpochMetric.run_id, EpochMetric.epoch)
    frame = _select_frame(query, url)
    extras = pd.DataFrame.from_records([extra or {} for extra in frame["extra"]], index=frame.index)
    return pd.concat([frame, extras.add_prefix("extra_")], axis=1)


def run_history(run_id: int, url: str | None = None) -> pd.DataFrame:
    """One row per epoch of one run, in epoch order; each ``extra`` key also gets an ``extra_<key>`` column."""
    return _history(EpochMetric.run_id == run_id, url)


def runs_history(run_ids: Iterable[int], url: str | None = None) -> pd.DataFrame:
    """``run_history`` of several runs in one query, with a ``run_id`` column (for comparing runs)."""
    return _history(EpochMetric.run_id.in_([int(i) for i in run_ids]), url)


# --- class metrics, confusion matrices, evaluations ----------------------------------------------


def _same_target(model, run_id: int, evaluation_id: int | None):
    """WHERE clause for rows of ``model`` belonging to a run's own test (NULL) or one evaluation."""
    target = model.evaluation_id.is_(None) if evaluation_id is None else model.evaluation_id == evaluation_id
    return (model.run_id == run_id) & target


def _replace_class_metrics(session: Session, run_id: int, rows: list[dict], evaluation_id: int | None) -> None:
    _check_fields({key for row in rows for key in row}, CLASS_METRIC_COLUMNS, "class metric")
    session.execute(delete(ClassMetric).where(_same_target(ClassMetric, run_id, evaluation_id)))
    session.add_all(
        ClassMetric(run_id=run_id, evaluation_id=evaluation_id, **{k: _plain(v) for k, v in row.items()})
        for row in rows
    )


def _replace_confusion(
    session: Session, run_id: int, matrix, class_names: list[str], evaluation_id: int | None
) -> None:
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.shape != (len(class_names), len(class_names)):
        raise StoreError(f"confusion matrix is {matrix.shape}, expected {len(class_names)}x{len(class_names)}")
    session.execute(delete(ConfusionMatrix).where(_same_target(ConfusionMatrix, run_id, evaluation_id)))
    session.add(
        ConfusionMatrix(
            run_id=run_id, evaluation_id=evaluation_id, class_names=list(class_names), matrix=matrix.tolist()
        )
    )


def save_class_metrics(run_id: int, rows: list[dict], evaluation_id: int | None = None, url: str | None = None) -> None:
    """Store per-class rows (class_name, precision, recall, f1, support), replacing earlier ones."""
    with session_scope(url) as session:
        _replace_class_metrics(session, run_id, rows, evaluation_id)


def class_metrics(run_id: int, evaluation_id: int | None = None, url: str | None = None) -> pd.DataFrame:
    """Per-class metrics of a run's test set (or of one evaluation), in the order they were saved."""
    query = (
        select(*_columns(ClassMetric, CLASS_METRIC_COLUMNS))
        .where(_same_target(ClassMetric, run_id, evaluation_id))
        .order_by(ClassMetric.id)
    )
    return _select_frame(query, url)


def save_confusion(
    run_id: int, matrix, class_names: list[str], evaluation_id: int | None = None, url: str | None = None
) -> None:
    """Store a square confusion matrix (rows true, columns predicted), replacing an earlier one."""
    with session_scope(url) as session:
        _replace_confusion(session, run_id, matrix, class_names, evaluation_id)


def confusion(
    run_id: int, evaluation_id: int | None = None, url: str | None = None
) -> tuple[list[str], np.ndarray] | None:
    """``(class_names, matrix)`` of a run's test set or one evaluation, or None if none was saved."""
    query = (
        select(ConfusionMatrix.class_names, ConfusionMatrix.matrix)
        .where(_same_target(ConfusionMatrix, run_id, evaluation_id))
        .order_by(ConfusionMatrix.id.desc())
        .limit(1)
    )
    with session_scope(url) as session:
        row = session.execute(query).first()
    if row is None:
        return None
    return list(row.class_names), np.asarray(row.matrix, dtype=np.int64)


def save_evaluation(
    run_id: int,
    *,
    dataset: str,
    metrics: dict,
    per_class: list[dict],
    matrix,
    class_names: list[str],
    tta: str = "none",
    url: str | None = None,
) -> int:
    """Store one evaluation with its per-class metrics and confusion matrix (all or nothing); return its id."""
    with session_scope(url) as session:
        evaluation = Evaluation(
            run_id=run_id, dataset=str(dataset), tta=tta, metrics=dict(metrics), created_at=utcnow()
        )
        session.add(evaluation)
        session.flush()
        _replace_class_metrics(session, run_id, per_class, evaluation.id)
        _replace_confusion(session, run_id, matrix, class_names, evaluation.id)
        return evaluation.id


def list_evaluations(run_id: int, url: str | None = None) -> pd.DataFrame:
    """A run's evaluations, newest first: id, run_id, dataset, tta, created_at, metrics, and one
    column per metrics key (accuracy, macro_f1, ...)."""
    query = (
        select(*_columns(Evaluation, EVALUATION_COLUMNS))
        .where(Evaluation.run_id == run_id)
        .order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
    )
    frame = _select_frame(query, url)
    expanded = pd.DataFrame.from_records([m or {} for m in frame["metrics"]], index=frame.index)
    return pd.concat([frame, expanded.drop(columns=[c for c in expanded if c in frame])], axis=1)


# --- per-item predictions (paired comparison, calibration) ---------------------------------------


class Prediction(Base):
    """One test (or validation, or evaluated) item's prediction: what paired comparisons match on.

    ``item_hash`` is the sha256 of the file's bytes, so two runs are paired on the same content even
    when paths differ; ``probs`` are the calibrated class probabilities.
    """

    __tablename__ = "predictions"
    __table_args__ = (Index(None, "run_id", "evaluation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    evaluation_id: Mapped[int | None] = _evaluation_fk()
    split: Mapped[str] = mapped_column(String(20), default="test")
    item_hash: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1000))  # relative to the dataset (or evaluated folder) root
    true_index: Mapped[int] = mapped_column(Integer)
    pred_index: Mapped[int] = mapped_column(Integer)
    probs: Mapped[list | None] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float)


PREDICTION_COLUMNS = ("split", "item_hash", "path", "true_index", "pred_index", "probs", "confidence")
_REQUIRED_PREDICTION_COLUMNS = ("item_hash", "path", "true_index", "pred_index")


def save_predictions(
    run_id: int,
    rows: list[dict],
    *,
    evaluation_id: int | None = None,
    split: str = "test",
    url: str | None = None,
) -> None:
    """Store per-item predictions of a run's own split (``evaluation_id=None``) or of one evaluation,
    replacing the earlier rows of that target. Row keys: item_hash, path, true_index, pred_index,
    and optionally probs (list of floats) and confidence."""
    keys = {key for row in rows for key in row}
    _check_fields(keys, set(PREDICTION_COLUMNS) - {"split"}, "prediction")
    missing = [key for key in _REQUIRED_PREDICTION_COLUMNS if any(key not in row for row in rows)]
    if missing:
        raise StoreError(f"prediction rows need {', '.join(missing)}")
    values = [
        {"run_id": run_id, "evaluation_id": evaluation_id, "split": split, "probs": None, "confidence": None}
        | {key: _plain(value) for key, value in row.items()}
        for row in rows
    ]
    for value in values:
        if value["probs"] is not None:
            value["probs"] = [float(p) for p in value["probs"]]
    with session_scope(url) as session:
        session.execute(delete(Prediction).where(_same_target(Prediction, run_id, evaluation_id)))
        if values:
            session.execute(insert(Prediction), values)


def predictions(run_id: int, evaluation_id: int | None = None, url: str | None = None) -> pd.DataFrame:
    """Per-item predictions of a run's own split (or of one evaluation), in the order they were saved:
    columns ``PREDICTION_COLUMNS``; empty when none were stored (runs from before this table)."""
    query = (
        select(*_columns(Prediction, PREDICTION_COLUMNS))
        .where(_same_target(Prediction, run_id, evaluation_id))
        .order_by(Prediction.id)
    )
    return _select_frame(query, url)
