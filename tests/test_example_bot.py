"""example_bot.py: the offline tour runs from start to end; without a token it says what to set."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import ROOT


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "example_bot.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_offline_tour_prints_the_transcript_and_exits_0() -> None:
    done = run("--offline", env={**os.environ, "DATABASE_URL": "", "REDIS_URL": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for expected in (
        "Case #1: Sam#0003 was warned.",
        "Case #2: Alex#0002 was banned for 1d.",
        "**#2** TEMPBAN",  # the cases list
        "bot [#general]: Be kind. No spam.",  # the snippet's short form
        "reached level 1",
        "is AFK: lunch (since",
        "reminder: stretch your legs",
        "bot [#starboard]: \u2b50 1",
    ):
        assert expected in out, f"{expected!r} missing from the transcript:\n{out}"
    assert "Traceback" not in done.stderr


def test_without_a_token_it_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    done = run(env=env)
    assert done.returncode == 2
    assert "DISCORD_TOKEN" in done.stderr
    assert "--offline" in done.stderr
