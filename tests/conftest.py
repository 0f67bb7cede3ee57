"""Test fixtures: every test runs on both backends, each on a clean database.

Backends (the session-scoped ``backend`` parameter):
- ``sqlite``: the embedded default, a fresh SQLite file and the in-process cache;
- ``postgres``: a new PostgreSQL database (built with ``aerich upgrade``) and Redis.

The second is skipped, and the run says so, when PostgreSQL or Redis does not answer; with
``CI=true`` that is a failure instead. ``--backend sqlite|postgres`` runs one of them; a test
that reaches PostgreSQL or Redis itself requests the ``services`` fixture and so belongs to the
second (``--backend sqlite`` needs no service at all). Tests marked ``slow`` are deselected by
default (``-m 'not slow'`` in pyproject's addopts); ``pytest -m slow`` runs them. Under
pytest-xdist (``-n 2`` there too) each worker has its own session: its own databases, SQLite
folder and cache prefix.
PostgreSQL is reached at ``$BOTDATA_TEST_POSTGRES`` (an account that may create databases,
default ``postgres://postgres@127.0.0.1:5432/postgres``), Redis at ``$BOTDATA_TEST_REDIS``
(default ``redis://127.0.0.1:6379/0``). Test databases and keys are removed afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tortoise.backends.base import executor
from tortoise.models import Model

import botdata
from tests.support import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    services_problem,
)

BACKENDS = ("sqlite", "postgres")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", choices=BACKENDS, help="run the tests on one backend only")


def _parametrizes_backend(metafunc: pytest.Metafunc) -> bool:
    """Whether the test chose its backends itself (``@pytest.mark.parametrize("backend", ...)``)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",")]
        if "backend" in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and not _parametrizes_backend(metafunc):
        chosen = metafunc.config.getoption("--backend")
        if "services" in metafunc.fixturenames:
            params = ["postgres"]  # deselected again below by --backend sqlite
        else:
            params = [chosen] if chosen else list(BACKENDS)
        metafunc.parametrize("backend", params, scope="session", indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--backend``, deselect tests that chose another backend themselves."""
    chosen = config.getoption("--backend")
    if not chosen:
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        other = callspec is not None and callspec.params.get("backend", chosen) != chosen
        (drop if other else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


#: How a skip of the second backend starts (the run's summary repeats it once).
NOT_RUN = "PostgreSQL + Redis backend not run: "


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgres":
        problem = services_problem()
        if problem:
            message = NOT_RUN + problem
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message + " (CI=true: services are required)", pytrace=False)
            pytest.skip(message)
    return name


@pytest.fixture(scope="session")
def services(backend: str) -> None:
    """For a test or fixture that reaches PostgreSQL or Redis itself rather than through
    ``db`` (a scratch database, Redis caches of its own, a Redis server it starts): the test
    belongs to the postgres backend, so it is skipped like it (a failure with ``CI=true``) when
    the services do not answer, and ``--backend sqlite`` deselects it."""
    assert backend == "postgres"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once why the second backend did not run (also from pytest-xdist's workers)."""
    notes: set[str] = set()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and NOT_RUN in str(longrepr[2]):
            notes.add(str(longrepr[2]).split(NOT_RUN, 1)[1])
    for problem in sorted(notes):
        terminalreporter.write_line(f"NOTE: {NOT_RUN}{problem}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated, empty database of the backend; dropped at the end of the session."""
    # Tortoise caches insert SQL per connection name, not per dialect: start each backend clean.
    executor.EXECUTOR_CACHE.clear()
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "botdata.sqlite3"
        yield f"sqlite://{path}"
        return
    name = f"botdata_test_{uuid.uuid4().hex[:12]}"
    url = create_postgres_database(name)
    try:
        migrate(url)
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(scope="session")
async def session_db(backend: str, database_url: str) -> AsyncIterator[botdata.Database]:
    redis_url = REDIS_URL if backend == "postgres" else None
    db = await botdata.connect(
        database_url=database_url,
        redis_url=redis_url,
        CACHE_PREFIX=f"botdata-test-{uuid.uuid4().hex[:8]}",
        # Test processes compete for 2 cores: a loaded event loop must not look like an outage
        # (the outage tests build caches with short timeouts of their own).
        REDIS_TIMEOUT=1.0,
    )
    yield db
    await db.cache.clear()
    await db.close()
    executor.EXECUTOR_CACHE.clear()


@pytest.fixture
async def db(session_db: botdata.Database) -> AsyncIterator[botdata.Database]:
    """The open handle, on an empty database and an empty cache."""
    yield session_db
    await truncate(session_db)
    await session_db.cache.clear()


async def truncate(db: botdata.Database) -> None:
    """Delete every row of botdata's tables and restart their ids (the migration record stays).

    On PostgreSQL, ``DELETE`` (children first) and ``ALTER SEQUENCE ... RESTART`` in one script:
    a test leaves a few rows, and ``TRUNCATE`` of every table took 0.2-0.3 s each time (new
    files for each table and index) against about 5 ms for this.
    """
    from tortoise import Tortoise

    conn = Tortoise.get_connection("default")
    tables = tables_children_first()
    if db.dialect == "postgres":
        sequences = await _postgres_sequences(tables)
        await conn.execute_script(
            "".join(f'DELETE FROM "{t}";' for t in tables)
            + "".join(f'ALTER SEQUENCE "{s}" RESTART;' for s in sequences)
        )
    else:
        await conn.execute_script(
            "PRAGMA foreign_keys = OFF;"
            + "".join(f'DELETE FROM "{t}";' for t in tables)
            + "DELETE FROM sqlite_sequence; PRAGMA foreign_keys = ON;"
        )


def tables_children_first() -> list[str]:
    """botdata's tables, each before the tables its foreign keys point to."""
    from botdata.models import __models__

    ordered: list[str] = []

    def visit(model: type[Model]) -> None:
        table = model._meta.db_table
        if table in ordered:
            return
        for name in model._meta.fk_fields | model._meta.o2o_fields:
            visit(model._meta.fields_map[name].related_model)
        ordered.append(table)

    for model in __models__:
        visit(model)
    return ordered[::-1]


_sequences: list[str] = []


async def _postgres_sequences(tables: list[str]) -> list[str]:
    """The sequences of ``tables``' generated ids (looked up once per session)."""
    from tortoise import Tortoise

    if not _sequences:
        rows = await Tortoise.get_connection("default").execute_query_dict(
            "SELECT s.relname AS name FROM pg_class s"
            " JOIN pg_depend d ON d.objid = s.oid JOIN pg_class t ON t.oid = d.refobjid"
            " WHERE s.relkind = 'S' AND t.relname = ANY($1::text[])",
            [tables],
        )
        _sequences.extend(row["name"] for row in rows)
    return _sequences
