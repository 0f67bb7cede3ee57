"""The PostgreSQL client: Tortoise's asyncpg client with botdata's errors, a retry of reads whose
connection died, and a bounded wait for a pooled connection (see :mod:`botdata.backends`).

Where a call can fail and what it becomes (:func:`translate`):

- the connection died under the call (the server restarted, the backend was terminated, the
  socket was reset): ``DatabaseUnavailableError``, after one more attempt for a read outside a
  transaction (:func:`is_read`); asyncpg's pool replaces a closed connection by itself, so the
  attempt runs on a fresh one;
- no connection could be opened, or the server cannot serve (refused, starting up or shutting
  down, authentication or the database gone, out of resources, an I/O error, read-only):
  ``DatabaseUnavailableError``, without a retry (the pool tries again on the next call);
- ``lock_timeout`` (55P03), ``statement_timeout`` (57014), a deadlock or serialization failure
  (class 40), no free pooled connection within ``pool_timeout``, a connection attempt past
  asyncpg's ``timeout``: ``DatabaseTimeoutError``;
- invalid data (class 22, or an argument asyncpg cannot encode): ``DatabaseRejectedValueError``;
- a broken constraint (class 23): Tortoise's ``IntegrityError``, as Tortoise raises it;
- anything else from the server (bad SQL, a missing table: bugs): Tortoise's
  ``OperationalError`` (``TransactionManagementError`` for a transaction in the wrong state).

Behind PgBouncer in transaction mode the startup ``server_settings`` (the timeouts) would be
refused or dropped: the timeouts would have to come from the server (``ALTER ROLE ... SET
lock_timeout``) or a ``SET LOCAL`` per transaction, and ``?statement_cache_size=0`` is needed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from asyncpg import exceptions as pg

# asyncpg's client-side DataError (an argument it cannot encode) is not exported by name.
from asyncpg.exceptions._base import DataError as ArgumentError
from asyncpg.pool import PoolConnectionProxy
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    ConnectionWrapper,
    NestedTransactionContext,
    PoolConnectionWrapper,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.backends.base_postgres.client import translate_exceptions
from tortoise.connection import get_connections
from tortoise.exceptions import (
    DBConnectionError,
    IntegrityError,
    OperationalError,
    TransactionManagementError,
)

from botdata.backends import (
    CONFLICT,
    LOCK_WAIT,
    LOST,
    NO_ANSWER,
    POOL_WAIT,
    REJECTED,
    TOO_LONG,
    UNAVAILABLE,
    reraise,
)
from botdata.errors import (
    BotdataError,
    DatabaseRejectedValueError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
)

log = logging.getLogger(__name__)

#: No connection could be opened, or the server cannot serve: refused, unknown host, starting
#: up or shutting down (57P03), authentication (28) or the database (3D) failed, out of
#: resources (53, too many connections included), a system or I/O error (58), an internal
#: error (XX), read-only (25006). Nothing to retry at once.
_CANNOT_SERVE = (
    DBConnectionError,
    ConnectionRefusedError,
    socket.gaierror,
    pg.CannotConnectNowError,
    pg.ClientCannotConnectError,
    pg.ConnectionRejectionError,
    pg.InvalidAuthorizationSpecificationError,
    pg.InvalidCatalogNameError,
    pg.InsufficientResourcesError,
    pg.PostgresSystemError,
    pg.InternalServerError,
    pg.ReadOnlySQLTransactionError,
)
#: The connection died under the call: the socket failed, the server ended the session
#: (57P01 shutdown, 57P02 crash, 57P05 idle session timeout...) or asyncpg found it closed;
#: less what these bases also hold (:data:`_NOT_LOST`).
_LOST = (
    OSError,
    pg.PostgresConnectionError,
    pg.OperatorInterventionError,
    pg.IdleInTransactionSessionTimeoutError,
    pg.InterfaceError,
    pg.InternalClientError,
)
_NOT_LOST = (TimeoutError, ArgumentError, pg.QueryCanceledError, *_CANNOT_SERVE)
#: The methods whose statement may be a read worth retrying.
_QUERY_METHODS = frozenset({"execute_query", "execute_query_dict"})

_STARTS_READING = re.compile(r"\s*(?:SELECT|WITH)\b", re.IGNORECASE)
_HAS_EFFECTS = re.compile(
    r"\b(?:INSERT|UPDATE|DELETE|MERGE|INTO|SHARE)\b"
    r"|nextval|setval|set_config|pg_advisory|pg_notify",
    re.IGNORECASE,
)


def is_read(query: str) -> bool:
    """Whether ``query`` only reads, so that running it a second time is harmless.

    True when it starts with ``SELECT`` or ``WITH`` and has no data-modifying keyword
    (``INSERT``, ``UPDATE``, ``DELETE``, ``MERGE``, ``SELECT ... INTO``), no row-locking clause
    (``FOR UPDATE``, ``FOR [KEY] SHARE``) and no call of a function with effects (sequences,
    settings, advisory locks, notifications). Judged on the text, so a literal or a quoted name
    holding such a word makes a read count as a write: that only costs the retry.
    """
    return _STARTS_READING.match(query) is not None and _HAS_EFFECTS.search(query) is None


def connection_lost(exc: Exception) -> bool:
    """Whether ``exc`` means the connection died (module docstring): the case where a read is
    retried and otherwise :class:`~botdata.errors.DatabaseUnavailableError` is raised."""
    return isinstance(exc, _LOST) and not isinstance(exc, _NOT_LOST)


def translate(exc: Exception) -> Exception:
    """The exception a caller gets for ``exc`` (raised by asyncpg, its pool or the socket);
    ``exc`` itself when it needs no translation (botdata's and Tortoise's own errors)."""
    if isinstance(exc, (BotdataError, TransactionManagementError, OperationalError)):
        return exc
    if isinstance(exc, TimeoutError):  # before OSError, its base class
        return DatabaseTimeoutError(NO_ANSWER)
    if isinstance(exc, (pg.DataError, ArgumentError, UnicodeEncodeError)):
        return DatabaseRejectedValueError(REJECTED)
    if isinstance(exc, pg.IntegrityConstraintViolationError):
        return IntegrityError(exc)
    if isinstance(exc, pg.LockNotAvailableError):
        return DatabaseTimeoutError(LOCK_WAIT)
    if isinstance(exc, pg.QueryCanceledError):
        return DatabaseTimeoutError(TOO_LONG)
    if isinstance(exc, pg.TransactionRollbackError):
        return DatabaseTimeoutError(CONFLICT)
    if isinstance(exc, _CANNOT_SERVE):
        return DatabaseUnavailableError(UNAVAILABLE)
    if connection_lost(exc):
        return DatabaseUnavailableError(LOST)
    if isinstance(exc, pg.InvalidTransactionStateError):
        return TransactionManagementError(exc)
    if isinstance(exc, pg.PostgresError):
        return OperationalError(exc)
    return exc


async def _acquire(client: PostgresClient) -> PoolConnectionProxy:
    """A connection from ``client``'s pool, waiting at most ``client.pool_timeout`` for one.

    An idle connection is handed over at once, so that usual case runs without a timer (a
    closed one is reopened within asyncpg's connect ``timeout``). Otherwise one timer bounds
    the wait (asyncpg's ``acquire(timeout=)`` would add a second one to the release): about
    12 us of CPU per statement while every connection is busy. Raises
    :class:`~botdata.errors.DatabaseTimeoutError` when none became free in time, and
    :class:`~botdata.errors.DatabaseUnavailableError` when the pool is closed (the handle was
    closed meanwhile).
    """
    pool = client._pool
    if pool is None:
        raise DatabaseUnavailableError(UNAVAILABLE)
    if pool.get_idle_size():
        return await pool.acquire()
    try:
        async with asyncio.timeout(client.pool_timeout):
            return await pool.acquire()
    except TimeoutError as exc:
        raise DatabaseTimeoutError(POOL_WAIT) from exc


class _PoolConnection(PoolConnectionWrapper[PoolConnectionProxy]):
    """Tortoise's pooled connection for one statement, with the bounded wait of :func:`_acquire`."""

    __slots__ = ()
    client: PostgresClient

    async def __aenter__(self) -> PoolConnectionProxy:
        await self.ensure_connection()
        self.connection = await _acquire(self.client)
        return self.connection


class _TransactionContext(TransactionContextPooled):
    """Tortoise's pooled transaction, with the bounded wait of :func:`_acquire` and botdata's
    errors when it starts and ends. When the body failed and the rollback fails because the
    connection is gone (the server has then discarded the transaction), the body's error is the
    one raised."""

    __slots__ = ()
    client: PostgresTransaction

    async def __aenter__(self) -> PostgresTransaction:
        try:
            await self.ensure_connection()
            self.client._connection = await _acquire(self.client._parent)
        except Exception as exc:
            reraise(exc, translate(exc))
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            await self._end()
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if self.client._finalized:
                return
            if exc_type is None:
                await self.client.commit()
            elif exc_type is not TransactionManagementError:
                try:
                    await self.client.rollback()
                except DatabaseUnavailableError:
                    log.debug("rollback failed on a lost connection", exc_info=True)
        finally:
            await self._end()

    async def _end(self) -> None:
        """Give the connection back to the pool (unless the pool is closed, which closed its
        connections) and leave the transaction's context."""
        pool = self.client._parent._pool
        try:
            if pool is not None:
                await pool.release(self.client._connection)
        except Exception as exc:
            reraise(exc, translate(exc))
        finally:
            get_connections().reset(self.token)


class PostgresClient(AsyncpgDBClient):
    """Tortoise's asyncpg client with botdata's errors, the retry of reads and the bounded
    connection wait (module docstring). ``pool_timeout``: seconds to wait for a free pooled
    connection; the other settings are asyncpg's (``timeout``, ``server_settings``...)."""

    #: Whether a read whose connection died is run once more (not inside a transaction).
    retries_reads = True

    def __init__(self, *, pool_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_timeout = pool_timeout

    def acquire_connection(
        self,
    ) -> PoolConnectionWrapper[PoolConnectionProxy] | ConnectionWrapper[asyncpg.Connection]:
        # The union is Tortoise's: a transaction (below) hands out its own connection.
        return _PoolConnection(self, self._pool_init_lock)

    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(PostgresTransaction(self), self._pool_init_lock)

    async def _translate_exceptions(
        self, func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return await func(self, *args, **kwargs)
        except Exception as exc:
            retry = (
                self.retries_reads
                and connection_lost(exc)
                and func.__name__ in _QUERY_METHODS
                and is_read(args[0])
            )
            if not retry:
                reraise(exc, translate(exc))
            log.warning("botdata: a read lost its database connection (%r); retrying once", exc)
        try:
            return await func(self, *args, **kwargs)
        except Exception as exc:
            reraise(exc, translate(exc))


class PostgresTransaction(TransactionWrapper, PostgresClient):
    """A transaction's connection: :class:`PostgresClient`'s errors (COMMIT and ROLLBACK
    included), no retries (a transaction dies with its connection)."""

    retries_reads = False
    _parent: PostgresClient
    # Tortoise annotates asyncpg.Connection, but a pooled transaction holds the pool's proxy.
    _connection: PoolConnectionProxy  # type: ignore[assignment]

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(PostgresTransaction(self))

    @translate_exceptions
    async def commit(self) -> None:
        await super().commit()

    @translate_exceptions
    async def rollback(self) -> None:
        await super().rollback()


client_class = PostgresClient
