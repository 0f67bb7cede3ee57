"""botdata's database clients: Tortoise's PostgreSQL (asyncpg) and SQLite clients with botdata's
timeouts and errors.

:func:`botdata.schema.tortoise_config` names :mod:`botdata.backends.postgres` or
:mod:`botdata.backends.sqlite` as the connection's ``engine`` (Tortoise loads the module's
``client_class``), so ``connect()``, the managers and Aerich all go through them. What they add
to Tortoise's clients:

- Every driver, pool and OS exception of a statement, a transaction's start and end, or waiting
  for a connection becomes one of botdata's errors (``__cause__`` is the original):
  :class:`~botdata.errors.DatabaseTimeoutError` for a lock wait, a statement timeout, a deadlock
  or no free connection in time; :class:`~botdata.errors.DatabaseUnavailableError` for a
  connection that died or a server that cannot serve; and
  :class:`~botdata.errors.DatabaseRejectedValueError` for a value the database refuses as
  invalid data (the safety net behind the managers' own checks). Messages are short and safe
  to show a member: no SQL, no credentials. Tortoise's ``IntegrityError`` stays as it is (the
  managers turn it into their own errors), and so does its ``OperationalError`` for what can
  only be a bug (bad SQL, a missing table: Aerich relies on that one).
- PostgreSQL: a read (see :func:`botdata.backends.postgres.is_read`) outside a transaction
  whose connection died is run once more on a fresh connection; writes and statements inside
  a transaction never are (a transaction dies with its connection, and whether an interrupted
  write was applied is unknown). ``lock_timeout`` and ``statement_timeout`` are server settings
  of every pooled connection, and waiting for a free connection is bounded.
- SQLite: the busy timeout (how long a write waits for another process's lock) and the wait for
  the process's one connection are bounded.

The success path costs a ``try``: no extra await, query or timer (PostgreSQL waits with a timer
only when no idle connection is ready).
"""

from __future__ import annotations

from typing import NoReturn

# What the errors say (shown to members by the cogs: short, no details; the cause has them).
LOCK_WAIT = "the database is busy (a record is locked by another operation); try again shortly"
POOL_WAIT = "the database is busy (no free connection in time); try again shortly"
TOO_LONG = "the database took too long to answer (statement timeout); try again shortly"
CONFLICT = "the database is busy (the operation conflicted with another); try again shortly"
NO_ANSWER = "the database did not answer in time; try again shortly"
LOST = "the connection to the database was lost; try again shortly"
UNAVAILABLE = "the database cannot serve requests right now; try again later"
REJECTED = "the database refused a value as invalid (out of range or not storable)"


def reraise(exc: Exception, translated: Exception) -> NoReturn:
    """Raise ``translated`` with ``exc`` as its cause, or ``exc`` itself when it is the same
    (an exception that needs no translation). Call it from the ``except`` clause of ``exc``."""
    if translated is exc:
        raise exc
    raise translated from exc
