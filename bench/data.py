"""The data every implementation gets: generated once per run from a fixed seed, so the three
see the same guilds, members, messages, cases, XP and reminders.

Loading into botdata's schema (used by botdata and the handwritten baseline, which shares it) is
here too: ``COPY`` through asyncpg. The seed-style baseline loads the same data into its own
tables (:mod:`bench.impl_seed`).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache

import asyncpg
import asyncpg.pool

from bench.harness import Zipf
from bench.sizes import Sizes
from botdata.managers.xp import level_threshold

# Id ranges (all valid Discord snowflakes, disjoint per workload).
#: A connection of its own or one borrowed from a pool: the loaders take either.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

PIPELINE_GUILD = 100_000_000_000_000_000
PIPELINE_MEMBER = 200_000_000_000_000_000
PIPELINE_CHANNEL = 300_000_000_000_000_000
CASE_GUILD = 400_000_000_000_000_000
CASE_PERSON = 500_000_000_000_000_000
HISTORY_GUILD = 600_000_000_000_000_000
HISTORY_MEMBER = 700_000_000_000_000_000
LEADERBOARD_GUILD = 800_000_000_000_000_000
LEADERBOARD_MEMBER = 900_000_000_000_000_000
REMINDER_GUILD = 1_000_000_000_000_000_000
REMINDER_USER = 1_100_000_000_000_000_000
PREFIX_GUILD = 1_200_000_000_000_000_000
#: Guilds the pending reminders are spread over.
REMINDER_GUILDS = 100

#: Prefixes of the guilds that set one (the others use the default).
PREFIXES = ("!", "?", ">>", "bot.", "%")
#: XP a message earns (the default level settings: 15-25) and the cooldown between rewarded
#: messages (seconds).
XP_MIN, XP_MAX, XP_COOLDOWN = 15, 25, 60.0


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


@cache
def _thresholds() -> list[int]:
    return [level_threshold(level) for level in range(1000)]


def level_of(xp: int) -> int:
    """The level ``xp`` reaches on the default curve (botdata's formula, via a table)."""
    return bisect.bisect_right(_thresholds(), xp) - 1


# Workload 1: message pipeline ------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """An incoming guild message: where, who wrote it, whom it mentions."""

    guild_id: int
    channel_id: int
    author_id: int
    mentions: tuple[int, ...]


@dataclass
class PipelineData:
    """Guilds (some with their own prefix), members with XP, AFK members, and the messages."""

    guilds: list[int]
    prefixes: dict[int, str]
    #: (guild_id, member_id, xp)
    levels: list[tuple[int, int, int]]
    #: (guild_id, member_id)
    afk: list[tuple[int, int]]
    messages: list[Message]


def pipeline_data(sizes: Sizes, seed: int = 1) -> PipelineData:
    """Members are spread evenly over the guilds; authors are drawn Zipf(s) over all members
    (popularity order shuffled); 15% of messages mention one member of the guild, 5% two."""
    rng = random.Random(seed)
    guilds = [PIPELINE_GUILD + g for g in range(sizes.guilds)]
    prefixes = {g: PREFIXES[i % len(PREFIXES)] for i, g in enumerate(guilds) if i % 3 == 0}
    members = [(guilds[i % len(guilds)], PIPELINE_MEMBER + i) for i in range(sizes.members)]
    by_guild: dict[int, list[int]] = {}
    for guild_id, member_id in members:
        by_guild.setdefault(guild_id, []).append(member_id)
    levels = [(g, m, rng.randint(0, 50_000)) for g, m in members]
    afk = rng.sample(members, int(len(members) * sizes.afk_share))
    popularity = members[:]
    rng.shuffle(popularity)
    authors = Zipf(popularity, sizes.zipf_s).sample(rng, sizes.messages)
    messages = []
    for guild_id, author_id in authors:
        draw = rng.random()
        count = 2 if draw < 0.05 else 1 if draw < 0.20 else 0
        mentions = tuple(rng.sample(by_guild[guild_id], count))
        messages.append(Message(guild_id, PIPELINE_CHANNEL + guild_id % 1000, author_id, mentions))
    return PipelineData(guilds, prefixes, levels, afk, messages)


async def load_pipeline(conn: Conn, data: PipelineData) -> None:
    """Guilds, configurations, AFK rows (enforced: talking does not clear them, so every
    implementation sees the same AFK set throughout) and levels into botdata's schema."""
    now = utcnow()
    await _guilds(conn, data.guilds, now)
    await conn.copy_records_to_table(
        "guild_configs",
        columns=["guild_id", "created_at", "updated_at", "prefix"],
        records=[(g, now, now, data.prefixes.get(g)) for g in data.guilds],
    )
    await conn.copy_records_to_table(
        "afk",
        columns=[
            "guild_id",
            "member_id",
            "nickname",
            "reason",
            "since",
            "until",
            "enforced",
            "permanent",
            "created_at",
            "updated_at",
        ],
        records=[(g, m, "away", "benchmark", now, None, True, True, now, now) for g, m in data.afk],
    )
    await _levels(conn, data.levels, now)


async def _guilds(conn: Conn, guild_ids: Sequence[int], now: datetime) -> None:
    await conn.copy_records_to_table(
        "guilds",
        columns=["id", "created_at", "updated_at", "joined_at", "case_count", "note_count"],
        records=[(g, now, now, now, 0, 0) for g in guild_ids],
    )


async def _levels(conn: Conn, rows: Iterable[tuple[int, int, int]], now: datetime) -> None:
    long_ago = now - timedelta(days=1)
    await conn.copy_records_to_table(
        "levels",
        columns=[
            "guild_id",
            "member_id",
            "xp",
            "level",
            "blacklisted",
            "last_message_at",
            "created_at",
            "updated_at",
        ],
        records=((g, m, xp, level_of(xp), False, long_ago, now, now) for g, m, xp in rows),
    )
    await conn.execute("ANALYZE levels")


# Workload 2: case creation ---------------------------------------------------------------------


def case_guilds(count: int) -> list[int]:
    """The guilds cases are created in."""
    return [CASE_GUILD + i for i in range(count)]


def case_requests(sizes: Sizes, guilds: Sequence[int], seed: int = 2) -> list[tuple[int, int, int]]:
    """``sizes.cases`` (guild, user, moderator) triples, guilds drawn uniformly."""
    rng = random.Random(seed)
    return [
        (rng.choice(guilds), CASE_PERSON + rng.randrange(100_000), CASE_PERSON + rng.randrange(50))
        for _ in range(sizes.cases)
    ]


async def load_case_guilds(conn: Conn, guilds: Sequence[int]) -> None:
    """The guild rows (with their configuration), counters at 0."""
    now = utcnow()
    await _guilds(conn, guilds, now)
    await conn.copy_records_to_table(
        "guild_configs",
        columns=["guild_id", "created_at", "updated_at"],
        records=[(g, now, now) for g in guilds],
    )


async def case_numbers(
    conn: Conn,
    table: str,
    guild_column: str,
    number_column: str,
    guilds: Sequence[int],
) -> dict[int, list[int]]:
    """The case numbers of each guild (sorted), from ``table``."""
    rows = await conn.fetch(
        f'SELECT "{guild_column}" AS g, "{number_column}" AS n FROM "{table}" '
        f'WHERE "{guild_column}" = ANY($1::bigint[]) ORDER BY 1, 2',
        list(guilds),
    )
    numbers: dict[int, list[int]] = {}
    for row in rows:
        numbers.setdefault(row["g"], []).append(row["n"])
    return numbers


@dataclass(frozen=True)
class NumberingCheck:
    """Whether each guild's case numbers are exactly 1..N."""

    guilds_ok: int
    guilds_bad: int
    duplicates: int
    gaps: int
    cases: int

    @property
    def ok(self) -> bool:
        """True when every guild is numbered 1..N."""
        return self.guilds_bad == 0

    def describe(self) -> str:
        """One line for the report."""
        if self.ok:
            return f"numbering 1..N in every guild ({self.guilds_ok} guild(s), {self.cases} cases)"
        return (
            f"numbering BROKEN in {self.guilds_bad} of {self.guilds_ok + self.guilds_bad} "
            f"guild(s): {self.duplicates} duplicate numbers, {self.gaps} missing numbers "
            f"({self.cases} cases)"
        )


def check_numbering(numbers: dict[int, list[int]], expected_cases: int) -> NumberingCheck:
    """Compare each guild's numbers with 1..N (N = its case count)."""
    ok = bad = duplicates = gaps = total = 0
    for values in numbers.values():
        total += len(values)
        distinct = set(values)
        dup = len(values) - len(distinct)
        top = max(values, default=0)
        missing = top - len(distinct)
        duplicates += dup
        gaps += missing
        if dup or missing or values[0] != 1:
            bad += 1
        else:
            ok += 1
    if total != expected_cases:
        gaps += max(0, expected_cases - total)
    return NumberingCheck(ok, bad, duplicates, gaps, total)


# Workload 3: case history ----------------------------------------------------------------------


@dataclass
class HistoryData:
    """One guild's cases: (number, user_id, moderator_id, created_at), numbers 1..N."""

    guild_id: int
    members: list[int]
    cases: list[tuple[int, int, int, datetime]]


def history_data(sizes: Sizes, seed: int = 3) -> HistoryData:
    """Each member gets 1..``history_max_cases`` cases, interleaved in time."""
    rng = random.Random(seed)
    members = [HISTORY_MEMBER + i for i in range(sizes.history_members)]
    owners = [m for m in members for _ in range(rng.randint(1, sizes.history_max_cases))]
    rng.shuffle(owners)
    start = utcnow() - timedelta(days=365)
    cases = [
        (n, user, CASE_PERSON + rng.randrange(50), start + timedelta(minutes=n))
        for n, user in enumerate(owners, start=1)
    ]
    return HistoryData(HISTORY_GUILD, members, cases)


async def load_history(conn: Conn, data: HistoryData) -> None:
    """The guild (case_count = N) and its WARN cases into botdata's schema."""
    now = utcnow()
    await _guilds(conn, [data.guild_id], now)
    await conn.execute(
        "UPDATE guilds SET case_count = $2 WHERE id = $1", data.guild_id, len(data.cases)
    )
    await conn.copy_records_to_table(
        "cases",
        columns=[
            "guild_id",
            "number",
            "type",
            "reason",
            "user_id",
            "moderator_id",
            "user_roles",
            "active",
            "created_by",
            "updated_by",
            "created_at",
            "updated_at",
        ],
        records=[
            (
                data.guild_id,
                n,
                "WARN",
                f"benchmark case {n}",
                user,
                mod,
                "[]",
                True,
                mod,
                mod,
                at,
                at,
            )
            for n, user, mod, at in data.cases
        ],
    )
    await conn.execute("ANALYZE cases")


# Workload 4: leaderboard -----------------------------------------------------------------------


def leaderboard_xp(index: int) -> int:
    """XP of the ``index``-th member of the big guild: a heavy tail with many ties at the
    bottom (a deterministic permutation of 1e7 / rank)."""
    return 10_000_000 // (1 + (index * 48_271) % 1_000_003)


def leaderboard_rows(sizes: Sizes) -> Iterator[tuple[int, int, int]]:
    """(guild_id, member_id, xp) of every member of the leaderboard guild (generated lazily:
    a million tuples need not sit in memory)."""
    for i in range(sizes.leaderboard_members):
        yield LEADERBOARD_GUILD, LEADERBOARD_MEMBER + i, leaderboard_xp(i)


def leaderboard_queries(sizes: Sizes, seed: int = 4) -> list[int]:
    """Random members whose rank is asked for."""
    rng = random.Random(seed)
    return [
        LEADERBOARD_MEMBER + rng.randrange(sizes.leaderboard_members)
        for _ in range(sizes.leaderboard_calls)
    ]


async def load_leaderboard(conn: Conn, rows: Iterable[tuple[int, int, int]]) -> None:
    """The guild and its levels rows into botdata's schema, then VACUUM ANALYZE."""
    now = utcnow()
    await _guilds(conn, [LEADERBOARD_GUILD], now)
    await _levels(conn, rows, now)
    await conn.execute("VACUUM ANALYZE levels")


# Workload 5: reminders -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderRow:
    """A pending reminder; ``due_in`` seconds from the moment it is loaded."""

    guild_id: int
    user_id: int
    channel_id: int
    content: str
    due_in: float


def reminder_rows(sizes: Sizes, seed: int = 5) -> tuple[list[ReminderRow], list[ReminderRow]]:
    """(far, soon): reminders due in one hour to 30 days, and the ``reminders_due`` ones due
    within ``due_window_s`` (offsets from the start of that window)."""
    rng = random.Random(seed)

    def row(i: int, due_in: float) -> ReminderRow:
        guild = REMINDER_GUILD + i % REMINDER_GUILDS
        return ReminderRow(guild, REMINDER_USER + i, guild, f"reminder {i}", due_in)

    soon_count = sizes.reminders_due
    far = [row(i, rng.uniform(3600, 30 * 86400)) for i in range(sizes.reminders - soon_count)]
    soon = [row(len(far) + i, rng.uniform(0, sizes.due_window_s)) for i in range(soon_count)]
    return far, soon


async def load_reminders(conn: Conn, rows: Sequence[ReminderRow], base: datetime) -> None:
    """Reminders due at ``base + due_in`` into botdata's schema (guild rows made if missing)."""
    now = utcnow()
    guilds = sorted({row.guild_id for row in rows})
    await conn.executemany(
        "INSERT INTO guilds (id, created_at, updated_at, joined_at) VALUES ($1, $2, $2, $2) "
        "ON CONFLICT (id) DO NOTHING",
        [(g, now) for g in guilds],
    )
    await conn.copy_records_to_table(
        "reminders",
        columns=[
            "guild_id",
            "user_id",
            "channel_id",
            "content",
            "due_at",
            "attempts",
            "created_at",
            "updated_at",
        ],
        records=[
            (
                r.guild_id,
                r.user_id,
                r.channel_id,
                r.content,
                base + timedelta(seconds=r.due_in),
                0,
                now,
                now,
            )
            for r in rows
        ],
    )
    await conn.execute("ANALYZE reminders")


# Workload 6: prefix lookup ---------------------------------------------------------------------


def prefix_guilds(count: int = 100) -> PipelineData:
    """Guilds with a configuration (two thirds with their own prefix) and nothing else."""
    guilds = [PREFIX_GUILD + i for i in range(count)]
    prefixes = {g: PREFIXES[i % len(PREFIXES)] for i, g in enumerate(guilds) if i % 3}
    return PipelineData(guilds, prefixes, [], [], [])
