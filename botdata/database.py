"""``botdata.connect()`` and the handle it returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aerich import Command
from tortoise import Tortoise
from tortoise.context import TortoiseContext
from tortoise.exceptions import OperationalError

from botdata.cache import Cache, MemoryCache, create_cache
from botdata.clock import Clock
from botdata.config import Settings, load_settings
from botdata.errors import (
    AlreadyConnectedError,
    DatabaseUnavailableError,
    SchemaNotReadyError,
)
from botdata.managers.afk import AFKManager
from botdata.managers.case_types import CaseTypeManager
from botdata.managers.cases import CaseManager
from botdata.managers.guilds import GuildManager
from botdata.managers.levels import LevelManager
from botdata.managers.notes import NoteManager
from botdata.managers.permissions import PermissionManager
from botdata.managers.privacy import PrivacyManager
from botdata.managers.ratelimits import RateLimitManager
from botdata.managers.reminders import ReminderManager
from botdata.managers.snippets import SnippetManager
from botdata.managers.starboard import StarboardManager
from botdata.managers.web import WebManager
from botdata.schema import APP, MIGRATIONS_LOCATION, dialect_of, redact_url, tortoise_config

log = logging.getLogger(__name__)

# The handle this process has open: Tortoise's global context allows one at a time.
_open: list[Database] = []


class Database:
    """An open botdata connection: the Tortoise context and (from the managers on) the cache.

    Made by :func:`connect`; close it with :meth:`close` or use it as ``async with``.
    """

    def __init__(
        self,
        settings: Settings,
        context: TortoiseContext,
        cache: Cache,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._context = context
        self.cache = cache
        self._clock = Clock()
        self.clock = self._clock if clock is None else clock
        # "sqlite" or "postgres"
        self.dialect = dialect_of(settings.DATABASE_URL)
        if self.dialect == "sqlite" and isinstance(cache, MemoryCache):
            # Other processes may use the file too: drop the cached copies when they commit.
            cache.follow(self._data_version)
        self.closed = False
        # Awaited first by close() (managers' background tasks), before the connections go.
        self.on_close: list[Callable[[], Awaitable[None]]] = []
        # managers (one line each)
        self.snippets = SnippetManager(self)
        self.reminders = ReminderManager(self)
        self.rate_limits = RateLimitManager(self)
        self.starboard = StarboardManager(self)
        self.web = WebManager(self)
        self.privacy = PrivacyManager(self)
        self.cases = CaseManager(self)
        self.case_types = CaseTypeManager(self)
        self.notes = NoteManager(self)
        self.guilds = GuildManager(self)
        self.afk = AFKManager(self)
        self.levels = LevelManager(self)  # after guilds: registers its settings model
        self.permissions = PermissionManager(self)

    @property
    def clock(self) -> Clock:
        """Where the managers, the reminder dispatcher, the cogs' expiry loops and the cache
        (its monotonic time) read the time, at each call: a :class:`~botdata.clock.Clock`
        unless ``connect(clock=...)`` gave another.

        Setting it takes effect at once (a test sets a :class:`~botdata.clock.ManualClock` on
        a long-lived handle and puts the old clock back): the cache reads the new clock's
        monotonic time, and the tasks asleep on the old clock move to the new one with the
        time they had left (:meth:`~botdata.clock.Clock.move_sleepers`). Setting anything but
        a :class:`~botdata.clock.Clock` raises :class:`TypeError`.
        """
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        if not isinstance(clock, Clock):
            raise TypeError(f"db.clock must be a botdata.Clock, not {clock!r}")
        self._clock.move_sleepers(clock)
        self._clock = clock
        self.cache.clock = clock.monotonic

    async def _data_version(self) -> int:
        """SQLite's change counter, as this process's connection sees it: it moves when
        another connection (another process) commits to the file. Read on the connection
        itself, so that it is not logged as a statement (``DATABASE_ECHO``) every second."""
        async with self._context.db().acquire_connection() as connection:
            rows = await connection.execute_fetchall("PRAGMA data_version")
        return int(rows[0][0])

    async def close(self) -> None:
        """Close the database connections. Calling it twice is harmless."""
        if self.closed:
            return
        self.closed = True
        try:
            for hook in self.on_close:
                await hook()
            await self.cache.close()
        finally:
            await self._context.close_connections()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<botdata.Database {redact_url(self.settings.DATABASE_URL)}>"


async def connect(
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> Database:
    """Open botdata: connect to the database and make sure its schema is current.

    Settings come from the environment (see :mod:`botdata.config`); ``database_url``,
    ``redis_url`` and any other setting given by name override them. On SQLite (the embedded
    default) pending migrations are applied, so a fresh file gets its schema with no manual step;
    on PostgreSQL an unmigrated database is refused. ``clock`` is where the handle reads the
    time (:attr:`Database.clock`; default: the real clock).

    Returns the :class:`Database` handle. Raises :class:`~botdata.errors.ConfigurationError`
    for a bad setting, :class:`~botdata.errors.DatabaseUnavailableError` when the database cannot
    be reached or does not answer within ``DATABASE_CONNECT_TIMEOUT`` (reaching it and checking
    its schema; SQLite's own migrations are not counted), saying why,
    :class:`~botdata.errors.SchemaNotReadyError` when PostgreSQL needs
    ``aerich upgrade``, :class:`~botdata.errors.AlreadyConnectedError` when this process already
    has an open handle.
    """
    if database_url is not None:
        settings["DATABASE_URL"] = database_url
    if redis_url is not None:
        settings["REDIS_URL"] = redis_url
    resolved = load_settings(**settings)
    if _open and not _open[-1].closed:
        raise AlreadyConnectedError("botdata is already connected in this process; close it first")
    config = tortoise_config(resolved)
    shown = redact_url(resolved.DATABASE_URL)
    dialect = dialect_of(resolved.DATABASE_URL)
    timeout = resolved.DATABASE_CONNECT_TIMEOUT
    try:
        async with asyncio.timeout(timeout):
            context, command = await _open_database(config, dialect, shown)
    except TimeoutError as exc:
        raise DatabaseUnavailableError(
            f"cannot reach the database at {shown}: "
            f"no answer within {timeout:g} s (DATABASE_CONNECT_TIMEOUT)"
        ) from exc
    try:
        if dialect == "sqlite":  # local work, not bounded by the connect timeout
            for version in await command.upgrade(run_in_transaction=True):
                log.info("botdata: applied migration %s", version)
        cache = await create_cache(resolved)
    except BaseException:
        await context.close_connections()
        raise
    db = Database(resolved, context, cache, clock)
    _open[:] = [db]
    return db


async def _open_database(
    config: dict[str, Any], dialect: str, shown: str
) -> tuple[TortoiseContext, Command]:
    """Initialise Tortoise, reach the database and read its migration state (on PostgreSQL:
    refuse it unless current). Returns the context and Aerich's command; closes the
    connections when it fails (or is cancelled by connect()'s timeout)."""
    # The global fallback lets every task of the process (discord.py's included) use it.
    context = await Tortoise.init(config=config, _enable_global_fallback=True)
    try:
        await _check_connection(context, shown)
        command = Command(tortoise_config=config, app=APP, location=MIGRATIONS_LOCATION)
        await command.init()
        if dialect == "postgres":
            await _require_current_schema(command)
    except BaseException:
        await context.close_connections()
        raise
    return context, command


async def _check_connection(context: TortoiseContext, shown: str) -> None:
    try:
        await context.db().execute_query("SELECT 1")
    except Exception as exc:  # the client raises botdata's errors; the cause has the details
        cause = exc.__cause__ if isinstance(exc, DatabaseUnavailableError) else None
        reason = str(cause or "") or str(exc) or type(exc).__name__
        raise DatabaseUnavailableError(f"cannot reach the database at {shown}: {reason}") from exc


async def _require_current_schema(command: Command) -> None:
    try:
        pending = await command.heads()
    except OperationalError:  # no aerich table at all
        pending = ["every migration"]
    if pending:
        raise SchemaNotReadyError(
            "the database schema is not current (missing: "
            + ", ".join(pending)
            + "); run `aerich upgrade` at the botdata checkout first"
        )


__all__ = ["Database", "connect"]
