"""Helpers shared by botdata's tests: the services' URLs, Aerich, running other processes.

(Service checks, scratch databases and the test databases are the plugin's:
:mod:`botdata.testing`.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from botdata.testing import services

ROOT = Path(__file__).resolve().parent.parent
# Read when a test module imports this, after the plugin applied --botdata-postgres/--botdata-redis.
ADMIN_URL = services.admin_url()
REDIS_URL = services.redis_url()


def aerich(*args: str, database_url: str, config: str | None = None) -> subprocess.CompletedProcess:
    """Run the ``aerich`` command line at the repository root against ``database_url``."""
    command = [sys.executable, "-m", "aerich"]
    if config:
        command += ["-c", config]
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def table_names() -> list[str]:
    """botdata's tables (not Aerich's)."""
    from botdata.models import __models__

    return [model._meta.db_table for model in __models__]


def run_python(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path = ROOT
) -> str:
    """Run ``code`` in a new Python process in ``cwd`` (the repository root); return its stdout.

    Raises AssertionError with the output when the process fails.
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"process failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_processes(
    code: str, count: int, *, env: dict[str, str] | None = None, timeout: float = 180
) -> list[str]:
    """Start ``count`` Python processes running ``code`` at once; return their stdouts.

    Each process gets ``WORKER`` (0..count-1) in its environment.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=ROOT,
            env={**os.environ, **(env or {}), "WORKER": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"worker failed:\n{out}\n{err}"
        outputs.append(out)
    return outputs


def build_wheel(tmp: Path) -> Path:
    """The wheel built (in ``tmp``) from a copy of the repository's files: setuptools builds in
    the source tree, and a stale ``build/`` there could put deleted modules into the wheel."""
    source = tmp / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("botdata-*.whl")
    return built


def install_wheel(wheel: Path, site: Path) -> Path:
    """Install ``wheel`` alone (no dependencies: this environment's serve) into the folder
    ``site``, to put first on ``PYTHONPATH``; return ``site``."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site
