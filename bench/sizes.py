"""How big each workload is: the issue's sizes (full) and small ones that prove the harness works
(quick, for CI)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Sizes and knobs of every workload."""

    #: Concurrent callers (workloads 1 and 2).
    concurrency: int = 64

    # 1. Message pipeline
    guilds: int = 1_000
    members: int = 50_000
    messages: int = 20_000
    #: Share of members who are AFK.
    afk_share: float = 0.05
    #: Zipf exponent of member activity.
    zipf_s: float = 1.1

    # 2. Case creation
    cases: int = 10_000
    case_guilds: int = 100

    # 3. Case history
    history_members: int = 2_000
    #: Each member has 1..this many cases.
    history_max_cases: int = 20

    # 4. Leaderboard
    leaderboard_members: int = 1_000_000
    leaderboard_calls: int = 1_000
    #: Seconds each implementation may spend on one leaderboard query kind.
    leaderboard_budget_s: float = 20.0

    # 5. Reminders
    reminders: int = 100_000
    reminders_due: int = 2_000
    #: The due reminders fall within this many seconds.
    due_window_s: float = 1.0
    #: Seconds of nothing due over which idle CPU is measured.
    idle_window_s: float = 5.0

    # 6. Prefix lookup
    prefix_calls: int = 200_000
    #: Calls for the implementations that go to the database for each lookup.
    prefix_db_calls: int = 2_000


FULL = Sizes()

QUICK = Sizes(
    guilds=100,
    members=5_000,
    messages=1_000,
    cases=500,
    case_guilds=10,
    history_members=200,
    leaderboard_members=10_000,
    leaderboard_calls=200,
    leaderboard_budget_s=5.0,
    reminders=2_000,
    reminders_due=200,
    idle_window_s=2.0,
    prefix_calls=20_000,
    prefix_db_calls=300,
)
