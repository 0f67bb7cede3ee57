"""The SQLite client: Tortoise's SQLite client with botdata's errors and bounded waits (see
:mod:`botdata.backends`).

A process has one SQLite connection, shared by its tasks in turn (Tortoise's lock; a transaction
holds it from start to end). Two waits are bounded:

- for that connection (``pool_timeout``, the ``DATABASE_POOL_TIMEOUT`` setting), so that calls
  queued behind a slow one fail instead of waiting in turn for ever longer;
- for another process's write lock on the file (SQLite's busy timeout, the ``busy_timeout``
  PRAGMA from ``DATABASE_LOCK_TIMEOUT``).

What a failure becomes (:func:`translate`): "database is locked" (``SQLITE_BUSY``,
``SQLITE_LOCKED``) and no connection in time: ``DatabaseTimeoutError``; a file that cannot be
opened, read or written (I/O error, disk full, not a database, read-only, corrupt):
``DatabaseUnavailableError``; a value SQLite cannot take (an int beyond 64 bits, text that is
not valid Unicode): ``DatabaseRejectedValueError``; a broken constraint: Tortoise's
``IntegrityError``; anything else (bad SQL, a missing table: bugs): Tortoise's
``OperationalError``.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, TypeVar

import aiosqlite
from tortoise.backends.base.client import (
    ConnectionWrapper,
    NestedTransactionContext,
    TransactionalDBClient,
    TransactionContext,
)
from tortoise.backends.sqlite.client import (
    SqliteClient as TortoiseSqliteClient,
)
from tortoise.backends.sqlite.client import (
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections
from tortoise.exceptions import IntegrityError, OperationalError

from botdata.backends import LOCK_WAIT, POOL_WAIT, REJECTED, UNAVAILABLE, reraise
from botdata.errors import (
    DatabaseRejectedValueError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
)

T = TypeVar("T")

#: Primary result codes of a lock held elsewhere.
_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
#: Primary result codes of a file SQLite cannot use.
_BROKEN = frozenset(
    {
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_READONLY,
    }
)


def translate(exc: Exception) -> Exception:
    """The exception a caller gets for ``exc`` (raised by sqlite3 or aiosqlite); ``exc``
    itself when it needs no translation (botdata's and Tortoise's own errors)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(exc)
    if isinstance(exc, (sqlite3.DataError, OverflowError, UnicodeEncodeError)):
        return DatabaseRejectedValueError(REJECTED)
    if isinstance(exc, sqlite3.Error):
        # Extended codes carry the primary one in their low byte (SQLITE_BUSY_SNAPSHOT...).
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in _BUSY:
            return DatabaseTimeoutError(LOCK_WAIT)
        if code in _BROKEN:
            return DatabaseUnavailableError(UNAVAILABLE)
        return OperationalError(exc)
    return exc


def _translated(
    method: Callable[..., Coroutine[Any, Any, T]],
) -> Callable[..., Coroutine[Any, Any, T]]:
    """``method`` raising :func:`translate`'s errors.

    Given the undecorated methods of Tortoise's client (:func:`_undecorated`), so that the
    errors are translated once, from sqlite3's.
    """

    @wraps(method)
    async def run(self: Any, *args: Any) -> T:
        try:
            return await method(self, *args)
        except Exception as exc:
            reraise(exc, translate(exc))

    return run


def _undecorated(
    method: Callable[..., Coroutine[Any, Any, T]],
) -> Callable[..., Coroutine[Any, Any, T]]:
    """``method`` without Tortoise's ``translate_exceptions`` around it."""
    inner: Callable[..., Coroutine[Any, Any, T]] = inspect.unwrap(method)
    return inner


async def _take(lock: asyncio.Lock, timeout: float) -> None:
    """Acquire ``lock`` (the process's SQLite connection) within ``timeout`` seconds.

    A free lock (nobody holds it or waits for it: asyncio's own test) is taken without a timer,
    which would cost a third of a short statement. Raises
    :class:`~botdata.errors.DatabaseTimeoutError` when it did not become free in time.
    """
    if not lock.locked() and not lock._waiters:
        await lock.acquire()
        return
    try:
        async with asyncio.timeout(timeout):
            await lock.acquire()
    except TimeoutError as exc:
        raise DatabaseTimeoutError(POOL_WAIT) from exc


class _Connection(ConnectionWrapper[aiosqlite.Connection]):
    """Tortoise's wrapper of the process's SQLite connection, waiting at most ``pool_timeout``
    for it, and giving it back when opening it failed (Tortoise's keeps it locked)."""

    __slots__ = ()
    client: SqliteClient

    async def __aenter__(self) -> aiosqlite.Connection:
        await _take(self._lock, self.client.pool_timeout)
        try:
            await self.ensure_connection()
        except BaseException:
            self._lock.release()
            raise
        return self.connection


class _TransactionContext(SqliteTransactionContext):
    """Tortoise's SQLite transaction, waiting at most ``pool_timeout`` for the connection, with
    botdata's errors and the connection given back when the start failed."""

    __slots__ = ()
    connection: SqliteTransaction

    async def __aenter__(self) -> TransactionalDBClient:
        await _take(self._trxlock, self.connection._parent.pool_timeout)
        try:
            await self.ensure_connection()
            await self.connection.begin()
        except Exception as exc:
            self._trxlock.release()
            reraise(exc, translate(exc))
        except BaseException:
            self._trxlock.release()
            raise
        self.token = get_connections().set(self.connection_name, self.connection)
        return self.connection


class SqliteClient(TortoiseSqliteClient):
    """Tortoise's SQLite client with botdata's errors and bounded waits (module docstring).
    ``pool_timeout``: seconds to wait for the process's connection; the other settings are
    Tortoise's (each unknown one a PRAGMA, such as ``busy_timeout`` in milliseconds)."""

    def __init__(self, file_path: str, *, pool_timeout: float, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        self.pool_timeout = pool_timeout

    def acquire_connection(self) -> ConnectionWrapper[aiosqlite.Connection]:
        return _Connection(self._lock, self)

    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(SqliteTransaction(self), self._lock)

    execute_insert = _translated(_undecorated(TortoiseSqliteClient.execute_insert))
    execute_many = _translated(_undecorated(TortoiseSqliteClient.execute_many))
    execute_query = _translated(_undecorated(TortoiseSqliteClient.execute_query))
    execute_query_dict = _translated(_undecorated(TortoiseSqliteClient.execute_query_dict))
    execute_script = _translated(_undecorated(TortoiseSqliteClient.execute_script))


class SqliteTransaction(SqliteTransactionWrapper, SqliteClient):
    """A transaction on the process's connection: :class:`SqliteClient`'s errors (COMMIT and
    ROLLBACK included); its statements take the connection at once (the transaction holds it)."""

    _parent: SqliteClient

    def acquire_connection(self) -> ConnectionWrapper[aiosqlite.Connection]:
        return ConnectionWrapper(self._lock, self)

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(SqliteTransaction(self))

    execute_many = _translated(_undecorated(SqliteTransactionWrapper.execute_many))
    commit = _translated(SqliteTransactionWrapper.commit)
    rollback = _translated(SqliteTransactionWrapper.rollback)


client_class = SqliteClient
