"""A description of the machine and services a run measured."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import asyncpg
import redis.asyncio as redis

#: Packages whose versions the report lists.
PACKAGES = ("tortoise-orm", "asyncpg", "redis", "hiredis", "pydantic", "sqlalchemy", "sqlmodel")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


async def describe(admin_url: str, redis_url: str) -> dict[str, str]:
    """CPU model, cores, RAM, load, OS, PostgreSQL/Redis/Python versions, package versions and
    the date (UTC), as ``{label: value}`` in display order."""
    conn = await asyncpg.connect(admin_url)
    try:
        pg_version = await conn.fetchval("SHOW server_version")
        fsync = await conn.fetchval("SHOW fsync")
        sync_commit = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await conn.close()
    client = redis.Redis.from_url(redis_url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "RAM": _ram_gib(),
        "load average at start (1/5/15 min)": " / ".join(f"{value:.2f}" for value in load),
        "OS": f"{platform.system()} {platform.release()}",
        "PostgreSQL": f"{pg_version} (fsync={fsync}, synchronous_commit={sync_commit}, loopback)",
        "Redis": f"{info.get('redis_version', '?')} (loopback)",
        "Python": platform.python_version(),
        "packages": ", ".join(f"{name} {_version(name)}" for name in PACKAGES),
    }


def render(description: dict[str, str]) -> str:
    """The description as a markdown list."""
    return "\n".join(f"- **{label}**: {value}" for label, value in description.items())
