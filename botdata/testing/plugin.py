"""The pytest plugin (entry point ``botdata``): botdata handles on both backends for tests.

Backends (the session-scoped ``botdata_backend`` parameter of every test using ``botdata_db``):

- ``sqlite``: the embedded default, a fresh SQLite file and the in-process cache;
- ``postgres``: a new PostgreSQL database (migrated to botdata's latest schema) and Redis,
  reached through a loopback proxy the plugin controls (see ``redis_outage``).

``--botdata-backend sqlite|postgres|both`` (default ``both``) chooses. The second backend is
skipped, with one line in the run's summary saying why, when PostgreSQL or Redis does not
answer; with ``CI=true`` that is a failure instead. Services: ``--botdata-postgres URL`` (an
account that may create databases) and ``--botdata-redis URL``, or ``$BOTDATA_TEST_POSTGRES``
and ``$BOTDATA_TEST_REDIS`` (see :mod:`botdata.testing.services`). Each session (each
pytest-xdist worker) has its own database and cache prefix, removed at the end; each test gets
them empty.

Fixtures: ``botdata_db``, ``botdata_backend``, ``botdata_database_url``, ``botdata_services``,
``botdata_clock``, ``redis_outage``; and, when discord.py and dpytest are installed (the
``testing`` extra), the bot-side ones of :mod:`botdata_cogs.testing`, which this plugin loads.
Async fixtures and tests need pytest-asyncio with one event loop per session
(``asyncio_default_fixture_loop_scope = "session"`` and ``asyncio_default_test_loop_scope =
"session"``): the handle is opened once per session.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import redis.asyncio
from tortoise.backends.base import executor

import botdata
from botdata.clock import ManualClock
from botdata.testing import services
from botdata.testing.outage import RedisProxy
from botdata.testing.support import eventually


def _bot_side_installed() -> bool:
    """Whether discord.py and dpytest are installed (read from their distributions' metadata:
    botdata never imports discord)."""
    try:
        importlib.metadata.distribution("discord.py")
        importlib.metadata.distribution("dpytest")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


#: The bot-side fixtures, loaded with this plugin when their dependencies are there: a project
#: that installed botdata without discord.py gets the database fixtures only.
pytest_plugins = ["botdata_cogs.testing"] if _bot_side_installed() else []

BACKENDS = ("sqlite", "postgres")
#: Fixtures that reach PostgreSQL or Redis themselves: their tests run on that backend only.
POSTGRES_ONLY = ("botdata_services", "redis_outage")
#: How a skip of the second backend starts (the run's summary repeats it once).
NOT_RUN = "PostgreSQL + Redis backend not run: "


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("botdata", "botdata test databases")
    group.addoption(
        "--botdata-backend",
        choices=(*BACKENDS, "both"),
        default="both",
        help="the backends botdata_db runs on (default: both)",
    )
    group.addoption(
        "--botdata-postgres",
        metavar="URL",
        help=f"a PostgreSQL account that may create databases (${services.POSTGRES_ENV})",
    )
    group.addoption("--botdata-redis", metavar="URL", help=f"Redis (${services.REDIS_ENV})")


def pytest_configure(config: pytest.Config) -> None:
    # Through the environment, so processes a test starts (and xdist's workers) see them too.
    for option, variable in (
        ("--botdata-postgres", services.POSTGRES_ENV),
        ("--botdata-redis", services.REDIS_ENV),
    ):
        value = config.getoption(option)
        if value:
            os.environ[variable] = value


def _chosen(config: pytest.Config) -> str | None:
    """The one backend ``--botdata-backend`` chose, or None for both."""
    chosen: str = config.getoption("--botdata-backend")
    return None if chosen == "both" else chosen


def _parametrizes_backend(metafunc: pytest.Metafunc) -> bool:
    """Whether the test chose its backends itself
    (``@pytest.mark.parametrize("botdata_backend", [...], indirect=True, scope="session")``)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",")]
        if "botdata_backend" in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "botdata_backend" in metafunc.fixturenames and not _parametrizes_backend(metafunc):
        chosen = _chosen(metafunc.config)
        if any(name in metafunc.fixturenames for name in POSTGRES_ONLY):
            params = ["postgres"]  # deselected again below by --botdata-backend sqlite
        else:
            params = [chosen] if chosen else list(BACKENDS)
        metafunc.parametrize("botdata_backend", params, scope="session", indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--botdata-backend``, deselect tests of the other backend."""
    chosen = _chosen(config)
    if not chosen:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        other = callspec is not None and callspec.params.get("botdata_backend", chosen) != chosen
        (drop if other else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
def botdata_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this test: ``"sqlite"`` or ``"postgres"``. Skips the test (fails it with
    ``CI=true``) when the postgres backend's services do not answer."""
    name: str = request.param
    if name == "postgres":
        problem = services.services_problem()
        if problem:
            message = NOT_RUN + problem
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message + " (CI=true: services are required)", pytrace=False)
            pytest.skip(message)
    return name


@pytest.fixture(scope="session")
def botdata_services(botdata_backend: str) -> None:
    """For a test or fixture that reaches PostgreSQL or Redis itself rather than through
    ``botdata_db`` (a scratch database, Redis clients of its own): the test belongs to the
    postgres backend, so it is skipped like it (a failure with ``CI=true``) when the services do
    not answer, and ``--botdata-backend sqlite`` deselects it. The URLs:
    :func:`botdata.testing.services.admin_url` and :func:`~botdata.testing.services.redis_url`.
    """
    assert botdata_backend == "postgres"


def _session_name() -> str:
    """A name for this session's resources: the xdist worker (``gw0``...) and a random part."""
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def botdata_database_url(
    botdata_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A freshly migrated, empty database of the backend (for this session); dropped at the end."""
    # Tortoise caches insert SQL per connection name, not per dialect: start each backend clean.
    executor.EXECUTOR_CACHE.clear()
    if botdata_backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "botdata.sqlite3"
        yield f"sqlite://{path}"
        return
    name = f"botdata_test_{_session_name()}"
    url = services.create_postgres_database(name)
    try:
        services.migrate(url)
        yield url
    finally:
        services.drop_postgres_database(name)


@pytest.fixture(scope="session")
def botdata_redis_proxy(botdata_backend: str) -> Iterator[RedisProxy | None]:
    """The loopback proxy the postgres backend's handle reaches Redis through (None on the
    embedded backend, which has no Redis)."""
    if botdata_backend != "postgres":
        yield None
        return
    proxy = RedisProxy(services.redis_url())
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
async def botdata_session_db(
    botdata_database_url: str, botdata_redis_proxy: RedisProxy | None
) -> AsyncIterator[botdata.Database]:
    """The session's open handle (tests use ``botdata_db``, which empties it after each)."""
    db = await botdata.connect(
        database_url=botdata_database_url,
        redis_url=botdata_redis_proxy.url if botdata_redis_proxy is not None else None,
        CACHE_PREFIX=f"botdata-test-{_session_name()}",
        # Test processes compete for cores: a loaded event loop must not look like an outage.
        REDIS_TIMEOUT=1.0,
    )
    yield db
    await db.cache.clear()
    await db.close()
    executor.EXECUTOR_CACHE.clear()


@pytest.fixture
async def botdata_db(botdata_session_db: botdata.Database) -> AsyncIterator[botdata.Database]:
    """The open :class:`botdata.Database` handle, on an empty database and an empty cache; the
    test's rows and cache entries are removed after it. The test runs once per backend."""
    yield botdata_session_db
    await services.reset(botdata_session_db)
    await botdata_session_db.cache.clear()


@pytest.fixture
async def botdata_clock(botdata_db: botdata.Database) -> AsyncIterator[ManualClock]:
    """A :class:`botdata.clock.ManualClock` that ``botdata_db`` (its managers, cache and
    reminder dispatcher) reads for this test: ``await botdata_clock.advance(minutes=5)`` fires
    what falls due without sleeping. The handle's previous clock is put back afterwards."""
    clock = ManualClock()
    previous = botdata_db.clock
    botdata_db.clock = clock
    yield clock
    botdata_db.clock = previous


#: How long the end of an outage may take to reach the handle (its cache retries Redis once
#: a second).
RECOVERY = 10.0


@pytest.fixture
def redis_outage(
    botdata_db: botdata.Database, botdata_redis_proxy: RedisProxy | None
) -> Callable[[], AbstractAsyncContextManager[None]]:
    """``async with redis_outage(): ...``: Redis is unreachable for ``botdata_db`` meanwhile.

    Every connection of the handle to Redis is closed and new ones are refused (Redis itself,
    shared with other processes, is untouched). On leaving, Redis is reachable again and the
    block returns once the handle writes to it again (within :data:`RECOVERY` seconds, else
    the test fails). A test requesting this fixture runs on the postgres backend only: the
    embedded backend's in-process cache cannot become unreachable.
    """

    proxy = botdata_redis_proxy
    assert proxy is not None, "redis_outage runs on the postgres backend only"

    @contextlib.asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        proxy.cut()
        try:
            yield
        finally:
            proxy.restore()
            await _wait_for_redis(botdata_db)

    return outage


async def _wait_for_redis(db: botdata.Database) -> None:
    """Return once ``db``'s cache writes reach Redis; fail the test after RECOVERY seconds."""
    client = redis.asyncio.Redis.from_url(services.redis_url())
    key = db.cache.key("botdata-testing-probe", uuid.uuid4().hex)

    async def written_through() -> bool:
        await db.cache.set_json(key, 1, ttl=60)
        return await client.get(key) == b"1"

    try:
        if not await eventually(written_through, RECOVERY, every=0.05):
            pytest.fail(f"the cache did not reach Redis within {RECOVERY} s after the outage")
        await db.cache.delete(key)
    finally:
        await client.aclose()
