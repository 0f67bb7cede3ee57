"""botdata.connect(): both backends, the embedded default, and the ways it refuses to start."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

import botdata
from botdata.errors import AlreadyConnectedError, ConfigurationError
from botdata.testing.services import create_postgres_database, drop_postgres_database
from tests.support import ADMIN_URL, run_python


async def test_the_handle_works_on_each_backend(botdata_db: botdata.Database) -> None:
    from botdata.models import Guild  # a model query through the handle's context

    assert botdata_db.dialect in {"sqlite", "postgres"}
    assert await Guild.all().count() == 0


async def test_a_second_connect_in_one_process_is_refused(botdata_db: botdata.Database) -> None:
    with pytest.raises(AlreadyConnectedError):
        await botdata.connect(database_url=botdata_db.settings.DATABASE_URL)


def test_embedded_default_creates_the_schema_without_a_manual_step(tmp_path) -> None:
    env = {key: "" for key in ("DATABASE_URL", "REDIS_URL") if key in os.environ}
    out = run_python(
        f"""
        import asyncio, json, os
        os.chdir({str(tmp_path)!r})
        for name in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(name, None)
        import botdata
        from botdata.models import Guild

        async def main():
            async with await botdata.connect() as db:
                await Guild.create(id=123456789012345678)
                print(json.dumps([db.dialect, await Guild.all().count(), type(db.cache).__name__]))
            assert db.closed
            async with await botdata.connect() as db:  # a second start finds its data
                print(json.dumps([db.dialect, await Guild.all().count(), type(db.cache).__name__]))

        asyncio.run(main())
        """,
        env=env,
    )
    first, second = (json.loads(line) for line in out.strip().splitlines())
    assert first[:2] == ["sqlite", 1]
    assert second[:2] == ["sqlite", 1]
    assert (tmp_path / "botdata.sqlite3").exists()


def _connect_error(url: str) -> tuple[str, str]:
    out = run_python(
        f"""
        import asyncio, json, botdata
        async def main():
            try:
                await botdata.connect(database_url={url!r})
            except botdata.errors.BotdataError as exc:
                print(json.dumps([type(exc).__name__, str(exc)]))
        asyncio.run(main())
        """
    )
    name, message = json.loads(out.strip().splitlines()[-1])
    return name, message


@pytest.fixture
def empty_postgres(botdata_services: None) -> Iterator[str]:
    name = f"botdata_unmigrated_{uuid.uuid4().hex[:12]}"
    url = create_postgres_database(name)
    yield url
    drop_postgres_database(name)


def test_an_unmigrated_postgres_is_refused_with_the_fix(empty_postgres: str) -> None:
    name, message = _connect_error(empty_postgres)
    assert name == "SchemaNotReadyError"
    assert "aerich upgrade" in message


def test_an_unreachable_database_names_the_url_without_the_password() -> None:
    name, message = _connect_error("postgres://bot:hunter2@127.0.0.1:1/nowhere")
    assert name == "DatabaseUnavailableError"
    assert "127.0.0.1:1/nowhere" in message
    assert "hunter2" not in message


def test_a_missing_postgres_database_is_a_clear_error(botdata_services: None) -> None:
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/botdata_absent_{uuid.uuid4().hex[:8]}"
    name, message = _connect_error(url)
    assert name == "DatabaseUnavailableError"
    assert "botdata_absent_" in message


async def test_a_malformed_url_is_refused_by_connect_with_botdata_s_error() -> None:
    # Before: Tortoise's ConfigurationError ("Port is not an integer") or urllib's ValueError.
    for url in ("postgres://bot:hunter2@db:notaport/bot", "sqlite://", "postgres://b@[::1/bot"):
        with pytest.raises(ConfigurationError, match="DATABASE_URL") as refused:
            await botdata.connect(database_url=url)
        assert "hunter2" not in str(refused.value)


def test_a_server_that_never_answers_fails_within_the_connect_timeout() -> None:
    out = run_python(
        """
        import asyncio, json, time, botdata

        async def main():
            async def silent(reader, writer):  # accepts, reads, never answers
                await reader.read()
                writer.close()

            server = await asyncio.start_server(silent, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            started = time.monotonic()
            try:
                await botdata.connect(
                    database_url=f"postgres://bot:hunter2@127.0.0.1:{port}/bot",
                    DATABASE_CONNECT_TIMEOUT=1,
                )
            except botdata.errors.BotdataError as exc:
                print(json.dumps([type(exc).__name__, str(exc), time.monotonic() - started]))
            server.close()

        asyncio.run(main())
        """
    )
    name, message, seconds = json.loads(out.strip().splitlines()[-1])
    assert name == "DatabaseUnavailableError"
    assert "no answer within 1 s (DATABASE_CONNECT_TIMEOUT)" in message
    assert "hunter2" not in message
    assert seconds < 30  # a bound for correctness (asyncpg alone waits 60 s), not a speed check
