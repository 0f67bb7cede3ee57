"""The database connection under faults (issue #9 points 20 and 27), through botdata's clients
(botdata.backends).

- Locks held elsewhere, statements running too long and a pool with no free connection end in
  ``DatabaseTimeoutError`` within the configured timeouts, and one busy guild does not stall
  the others (both backends, and PostgreSQL's statement timeout).
- Dead connections on a PostgreSQL server this module starts itself (``initdb`` + ``pg_ctl`` as
  the ``postgres`` OS user, on a free loopback port, removed at the end): a read whose backend
  is terminated is retried, a write or a transaction is not and fails with
  ``DatabaseUnavailableError``; under load, terminating every backend and restarting the server
  give callers nothing but botdata's errors, and the handle works afterwards.

Each scenario runs in a process of its own (tests/fault_scenarios.py), with a handle of its own
settings: ``connect()`` allows one open handle per process.
These scenarios are marked slow (``pytest -m slow``, a step of its own in ``.ci/run``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise

import botdata
from botdata.backends.postgres import is_read
from botdata.errors import DatabaseRejectedValueError
from botdata.testing.services import migrate
from tests.support import run_python

POSTGRES_ONLY = pytest.mark.parametrize(
    "botdata_backend", ["postgres"], indirect=True, scope="session"
)
#: What asyncpg raises for a terminated backend: its FATAL message, or the closed socket first.
DIED = {"AdminShutdownError", "ConnectionDoesNotExistError"}


def _scenario(name: str, database_url: str, settings: dict[str, Any], **arguments: Any) -> Any:
    out = run_python(
        f"""
        from tests.fault_scenarios import run
        run({name!r}, {database_url!r}, {settings!r}, **{arguments!r})
        """,
        timeout=240,
    )
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("query", "read"),
    [
        ('SELECT "id" FROM "cases" WHERE "guild_id"=$1 LIMIT $2', True),
        ("  select 1", True),
        ("WITH due AS (SELECT id FROM cases) SELECT count(*) FROM due", True),
        ('SELECT "updated_at", "updated_by" FROM "guild_configs"', True),
        ("SELECT id FROM guilds WHERE id = $1 FOR UPDATE", False),
        ("SELECT id FROM guilds WHERE id = $1 FOR KEY SHARE", False),
        ("SELECT * INTO copy FROM guilds", False),
        ("WITH g AS (INSERT INTO guilds (id) VALUES ($1) RETURNING id) SELECT * FROM g", False),
        ("WITH due AS (SELECT id FROM cases) UPDATE cases SET active = false", False),
        ("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", False),
        ("SELECT nextval('cases_id_seq')", False),
        ("INSERT INTO guilds (id) VALUES ($1)", False),
        ("UPDATE guilds SET case_count = case_count + 1", False),
        ("DELETE FROM afk WHERE until <= $1 RETURNING *", False),
    ],
)
def test_only_statements_that_just_read_count_as_reads(query: str, read: bool) -> None:
    assert is_read(query) is read


@pytest.mark.parametrize(
    ("cast", "value", "refused_by"),
    [
        ("integer", 2**31, {"postgres"}),  # asyncpg cannot encode it; SQLite takes it
        ("bigint", 2**63, {"postgres", "sqlite"}),  # beyond 64 bits
        ("text", "a\x00b", {"postgres"}),  # PostgreSQL's text cannot hold NUL (22021)
        ("text", "a\ud800b", {"postgres", "sqlite"}),  # a lone surrogate is not UTF-8
    ],
)
async def test_a_value_the_database_refuses_is_a_validation_error(
    botdata_db: botdata.Database, cast: str, value: object, refused_by: set[str]
) -> None:
    """The safety net behind the managers' checks, on a statement that takes the value."""
    client = Tortoise.get_connection("default")
    query = (
        f"SELECT CAST($1 AS {cast}) AS v" if botdata_db.dialect == "postgres" else "SELECT ? AS v"
    )
    if botdata_db.dialect not in refused_by:
        await client.execute_query(query, [value])
        return
    with pytest.raises(DatabaseRejectedValueError, match="refused a value") as refused:
        await client.execute_query(query, [value])
    assert refused.value.__cause__ is not None


# Point 27: lock, statement and pool timeouts -------------------------------------------------


@pytest.mark.slow
async def test_a_lock_held_elsewhere_fails_in_time_and_other_guilds_go_on(
    botdata_db: botdata.Database,
) -> None:
    settings = {"DATABASE_LOCK_TIMEOUT": 0.5}
    if botdata_db.dialect == "postgres":
        result = _scenario("lock_held_on_postgres", botdata_db.settings.DATABASE_URL, settings)
        # Another guild's read returned while the row lock was still held.
        assert result["events"] == ["config read", "creates done", "lock released"]
        assert result["config_prefix"] is None
        assert len(result["creates"]) == 20
        cause = "LockNotAvailableError"
    else:
        result = _scenario("lock_held_on_sqlite", botdata_db.settings.DATABASE_URL, settings)
        assert len(result["creates"]) == 3
        cause = "OperationalError"  # sqlite3's "database is locked"
    for outcome in result["creates"]:
        assert outcome["type"] == "DatabaseTimeoutError", outcome
        assert outcome["cause"] == cause
        assert "locked" in outcome["message"]
    # The failed creates wrote nothing (not even a number): the next one is case 1.
    assert result["after_number"] == 1
    assert result["cases"] == 1


@pytest.mark.slow
async def test_no_free_connection_in_time_is_a_timeout_error(botdata_db: botdata.Database) -> None:
    settings = {"DATABASE_POOL_MAX": 1, "DATABASE_POOL_TIMEOUT": 0.3, "DATABASE_LOCK_TIMEOUT": 30}
    result = _scenario("pool_exhausted", botdata_db.settings.DATABASE_URL, settings)
    read = result["read"]
    assert read["type"] == "DatabaseTimeoutError", read
    assert read["cause"] == "TimeoutError"
    assert "no free connection" in read["message"]
    assert read["unavailable"]  # one except clause catches both
    # It failed while the write still held the connection; the write went through afterwards.
    assert result["create_done_before_release"] is False
    assert result["create"] == {"type": None}


@pytest.mark.slow
@POSTGRES_ONLY
async def test_a_statement_running_too_long_is_a_timeout_error(
    botdata_db: botdata.Database,
) -> None:
    settings = {"DATABASE_STATEMENT_TIMEOUT": 0.2, "DATABASE_LOCK_TIMEOUT": 0.1}
    result = _scenario("statement_too_long", botdata_db.settings.DATABASE_URL, settings)
    assert result["settings"] == {"lock": "100ms", "statement": "200ms"}
    assert result["slow"]["type"] == "DatabaseTimeoutError"
    assert result["slow"]["cause"] == "QueryCanceledError"
    assert "SELECT" not in result["slow"]["message"]


# Point 20: dead connections, on a PostgreSQL server of this module's own ---------------------


@dataclass(frozen=True)
class OwnPostgres:
    """A PostgreSQL server this module started: its database URL and how to restart it."""

    url: str
    restart: list[str]


def _postgres_bin() -> Path | None:
    """The bin directory of the newest PostgreSQL installed the Debian way, if any."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()]
    return max(found, key=lambda p: int(p.parts[-3])).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def own_postgres(botdata_backend: str) -> Iterator[OwnPostgres]:
    """A fresh, migrated PostgreSQL server on a free loopback port, stopped and removed at the
    end (even on failure). Skipped without PostgreSQL's binaries (a failure with CI=true)."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        message = "PostgreSQL's initdb/pg_ctl not found under /usr/lib/postgresql/*/bin"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: required)")
        pytest.skip(message)
    # PostgreSQL refuses to run as root: run it as the postgres OS user, in a directory it owns.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="botdata-own-pg-"))
    if as_owner:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    pg_ctl = [*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"

    def run(*command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    try:
        run(*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        run(*pg_ctl, "-o", options, "-l", str(root / "log"), "start")
        run(*as_owner, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
            "-U", "postgres", "botdata")  # fmt: skip
        url = f"postgres://postgres@127.0.0.1:{port}/botdata"
        migrate(url)
        yield OwnPostgres(url, [*pg_ctl, "-m", "fast", "restart"])
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@POSTGRES_ONLY
def test_a_read_whose_connection_dies_is_retried(own_postgres: OwnPostgres) -> None:
    result = _scenario("read_loses_connection", own_postgres.url, {"DATABASE_LOCK_TIMEOUT": 30})
    assert result["terminated"] is True
    assert result["outcome"] == {"type": None}  # the read returned (on a new connection)
    assert result["prefix"] == "?!"


@pytest.mark.slow
@POSTGRES_ONLY
def test_a_write_whose_connection_dies_is_not_retried(own_postgres: OwnPostgres) -> None:
    result = _scenario("write_loses_connection", own_postgres.url, {"DATABASE_LOCK_TIMEOUT": 30})
    assert result["terminated"] is True
    outcome = result["outcome"]
    assert outcome["type"] == "DatabaseUnavailableError", outcome
    assert outcome["cause"] in DIED
    assert "lost" in outcome["message"]
    assert result["cases"] == 0  # not run a second time


@pytest.mark.slow
@POSTGRES_ONLY
def test_a_transaction_whose_connection_dies_is_not_retried(own_postgres: OwnPostgres) -> None:
    result = _scenario(
        "transaction_loses_connection", own_postgres.url, {"DATABASE_LOCK_TIMEOUT": 30}
    )
    assert result["terminated"] is True
    outcome = result["outcome"]
    assert outcome["type"] == "DatabaseUnavailableError", outcome
    assert outcome["cause"] in DIED
    assert result["rows"] == 0


@pytest.mark.slow
@POSTGRES_ONLY
def test_terminated_backends_and_a_restart_under_load(own_postgres: OwnPostgres) -> None:
    result = _scenario("restarts_under_load", own_postgres.url, {}, restart=own_postgres.restart)
    assert result["terminated"] > 0
    assert result["restarted"] is True
    assert result["done"]["before"] > 0
    assert result["done"]["after"] > 0  # the scenario also checked every operation at the end
    failures = result["failures"]
    assert failures, "the faults should have failed some calls"
    for failure in failures:
        assert failure["botdata"], failure
        assert failure["unavailable"], failure
        assert failure["cause"] is not None, failure
    # Reads survived the terminated backends (retried); only writes may have failed there.
    assert not [
        failure
        for failure in failures
        if failure["phase"] == failure["ended"] == "terminate" and failure["operation"] != "create"
    ]
