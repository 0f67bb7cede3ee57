"""`aerich upgrade` builds the whole schema from empty on both backends; drift is caught."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from botdata.models import __models__
from botdata.schema import MIGRATIONS_LOCATION
from botdata.testing.services import create_postgres_database, drop_postgres_database
from tests.support import ROOT, aerich


def expected_columns() -> dict[str, set[str]]:
    """Every table and column the models describe."""
    tables = {}
    for model in __models__:
        meta = model._meta
        relations = {f"{name}_id" for name in meta.fk_fields | meta.o2o_fields}
        tables[meta.db_table] = set(meta.fields_db_projection.values()) | relations
    return tables


@pytest.fixture
def postgres_database(botdata_services: None) -> Iterator[str]:
    name = f"botdata_migrate_{uuid.uuid4().hex[:12]}"
    url = create_postgres_database(name)
    yield url
    drop_postgres_database(name)


async def postgres_columns(url: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    tables: dict[str, set[str]] = {}
    for row in rows:
        tables.setdefault(row["table_name"], set()).add(row["column_name"])
    return tables


def sqlite_columns(path: Path) -> dict[str, set[str]]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            name: {r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')}
            for name in names
            if not name.startswith("sqlite_")
        }


def assert_full_schema(found: dict[str, set[str]]) -> None:
    for table, columns in expected_columns().items():
        assert table in found, f"missing table {table}"
        assert columns <= found[table], f"{table} lacks {columns - found[table]}"
    assert "aerich" in found


@pytest.mark.parametrize("config", [None, "aerich.ini"])
async def test_upgrade_builds_the_schema_on_an_empty_postgres(postgres_database, config) -> None:
    done = aerich("upgrade", database_url=postgres_database, config=config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success upgrading" in done.stdout
    assert_full_schema(await postgres_columns(postgres_database))
    heads = aerich("heads", database_url=postgres_database, config=config)
    assert "No available heads" in heads.stdout
    again = aerich("upgrade", database_url=postgres_database, config=config)
    assert "No upgrade items found" in again.stdout


@pytest.mark.parametrize("config", [None, "aerich.ini"])
def test_upgrade_builds_the_schema_on_an_empty_sqlite_file(tmp_path: Path, config) -> None:
    path = tmp_path / "fresh.sqlite3"
    done = aerich("upgrade", database_url=f"sqlite://{path}", config=config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_full_schema(sqlite_columns(path))
    heads = aerich("heads", database_url=f"sqlite://{path}", config=config)
    assert "No available heads" in heads.stdout


def test_plain_aerich_migrate_at_the_root_sees_no_change(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'db.sqlite3'}"
    assert aerich("upgrade", database_url=url).returncode == 0
    done = aerich("migrate", "--name", "nothing", database_url=url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes detected" in done.stdout


def check(location: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "botdata.makemigration", "--check", "--location", str(location)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_migrations_match_the_models() -> None:
    done = check(Path(MIGRATIONS_LOCATION))
    assert done.returncode == 0, done.stdout + done.stderr


def test_drift_check_fails_when_a_model_changes_without_a_migration(tmp_path: Path) -> None:
    """Simulate a model change by recording an older state: the check must notice."""
    from aerich.utils import compress_dict, decompress_dict

    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_LOCATION, location)
    latest = max((location / "models").glob("*.py"), key=lambda p: int(p.name.split("_")[0]))
    text = latest.read_text()
    namespace: dict[str, object] = {}
    exec(compile(text, str(latest), "exec"), namespace)
    state = decompress_dict(namespace["MODELS_STATE"])
    del state["models.Note"]["data_fields"][-1]  # as if a field had been added since
    text = text.replace(repr(namespace["MODELS_STATE"]), repr(compress_dict(state)))
    latest.write_text(text)
    done = check(location)
    assert done.returncode == 1
    assert "models.Note" in done.stdout
