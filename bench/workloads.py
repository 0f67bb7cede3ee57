"""The six workloads: each loads its data into every implementation, times them one after the
other (a, b, c) in this process, and records metrics and notes in the report."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime, timedelta

from bench import data
from bench.harness import Latency, Report, Target, fmt, run_concurrent, run_sequential
from bench.impl_base import Implementation
from bench.sizes import Sizes

log = logging.getLogger("bench")

Impls = dict[str, Implementation]
Workload = Callable[[Impls, Sizes, Report], Awaitable[None]]

PIPELINE = "1. Message pipeline"
CASES = "2. Case creation"
HISTORY = "3. Case history"
LEADERBOARD = "4. Leaderboard"
REMINDERS = "5. Reminders"
PREFIX = "6. Prefix lookup"


def _latency(report: Report, workload: str, label: str, key: str, latency: Latency) -> None:
    report.metric(workload, f"{label} p50", "ms", "lower").values[key] = latency.p50_ms
    report.metric(workload, f"{label} p99", "ms", "lower").values[key] = latency.p99_ms


# 1 ---------------------------------------------------------------------------------------------


async def message_pipeline(impls: Impls, sizes: Sizes, report: Report) -> None:
    """Prefix lookup, AFK check of author + mentions, XP grant with cooldown, per message;
    ``concurrency`` messages in flight. An untimed warm-up of one message per guild runs first
    (the steady state of a running bot: caches warm, connections open)."""
    pipeline = data.pipeline_data(sizes)
    rng = random.Random(11)
    by_guild: dict[int, list[int]] = {}
    for guild_id, member_id, _ in pipeline.levels:
        by_guild.setdefault(guild_id, []).append(member_id)
    warmup = [
        data.Message(g, data.PIPELINE_CHANNEL + g % 1000, rng.choice(by_guild[g]), ())
        for g in pipeline.guilds
    ]
    mentions = sum(len(m.mentions) for m in pipeline.messages)
    report.note(
        PIPELINE,
        f"{len(pipeline.messages):,} messages, {sizes.guilds:,} guilds, {sizes.members:,} "
        f"members (authors Zipf s={sizes.zipf_s}), {mentions:,} mentions, "
        f"{len(pipeline.afk):,} AFK members, {sizes.concurrency} concurrent; XP cooldown "
        f"{data.XP_COOLDOWN:.0f} s; after an untimed warm-up of one message per guild.",
    )
    for key, impl in impls.items():
        log.info("  %s: loading", key)
        await impl.load_pipeline(pipeline)
        await run_concurrent(impl.handle_message, warmup, sizes.concurrency)
        impl.granted = 0
        log.info("  %s: %d messages", key, len(pipeline.messages))
        timed = await run_concurrent(impl.handle_message, pipeline.messages, sizes.concurrency)
        report.metric(PIPELINE, "throughput", "messages/s", "higher").values[key] = timed.rate
        report.metric(PIPELINE, "client CPU per message", "us", "lower").values[key] = (
            timed.cpu_per_call_us
        )
        _latency(report, PIPELINE, "latency", key, Latency.of_ns(timed.latencies_ns))
        report.note(
            PIPELINE,
            f"({key}) {impl.granted:,} messages earned XP; the run took {timed.wall_s:.1f} s"
            + (
                " (longer than the cooldown, so more messages earned XP)."
                if timed.wall_s > data.XP_COOLDOWN
                else "."
            ),
        )


# 2 ---------------------------------------------------------------------------------------------


async def case_creation(impls: Impls, sizes: Sizes, report: Report) -> None:
    """``sizes.cases`` cases by ``concurrency`` moderators, over ``case_guilds`` guilds and all
    in one guild; then each guild's numbers are checked to be exactly 1..N."""
    shapes = {
        f"{sizes.case_guilds} guilds": data.case_guilds(sizes.case_guilds),
        "one guild": [data.CASE_GUILD + 10_000],
    }
    every = [g for guilds in shapes.values() for g in guilds]
    report.note(CASES, f"{sizes.cases:,} WARN cases per shape, {sizes.concurrency} concurrent.")
    for impl in impls.values():
        await impl.load_case_guilds(every)
    for shape, guilds in shapes.items():
        requests = data.case_requests(sizes, guilds)
        for key, impl in impls.items():
            log.info("  %s: %d cases, %s", key, len(requests), shape)

            async def create(request: tuple[int, int, int], impl: Implementation = impl) -> None:
                await impl.create_case(*request)

            timed = await run_concurrent(create, requests, sizes.concurrency)
            report.metric(CASES, f"throughput, {shape}", "cases/s", "higher").values[key] = (
                timed.rate
            )
            latency = Latency.of_ns(timed.latencies_ns)
            report.metric(CASES, f"latency p99, {shape}", "ms", "lower").values[key] = (
                latency.p99_ms
            )
            report.metric(CASES, f"client CPU per case, {shape}", "us", "lower").values[key] = (
                timed.cpu_per_call_us
            )
            check = data.check_numbering(await impl.case_numbers(guilds), len(requests))
            report.note(CASES, f"({key}) {shape}: {check.describe()}.")


# 3 ---------------------------------------------------------------------------------------------


async def case_history(impls: Impls, sizes: Sizes, report: Report) -> None:
    """The first page of every member's cases, once with empty caches (cold), then again
    (warm); one call at a time."""
    history = data.history_data(sizes)
    members = history.members[:]
    random.Random(12).shuffle(members)
    report.note(
        HISTORY,
        f"{len(history.cases):,} cases of {len(members):,} members in one guild "
        f"(1-{sizes.history_max_cases} each); each member asked once cold, then once warm, "
        "sequentially.",
    )
    for key, impl in impls.items():
        log.info("  %s: loading %d cases", key, len(history.cases))
        await impl.load_history(history)
        await impl.forget_cached_cases()

        async def page(user_id: int, impl: Implementation = impl) -> None:
            await impl.user_cases(history.guild_id, user_id)

        log.info("  %s: cold + warm, %d members", key, len(members))
        cold = await run_sequential(page, members)
        warm = await run_sequential(page, members)
        _latency(report, HISTORY, "cold", key, Latency.of_ns(cold.latencies_ns))
        _latency(report, HISTORY, "warm", key, Latency.of_ns(warm.latencies_ns))


# 4 ---------------------------------------------------------------------------------------------


async def leaderboard(impls: Impls, sizes: Sizes, report: Report) -> None:
    """A random member's rank and the top-10 page of a guild of ``leaderboard_members``
    members, one call at a time (each kind stops after ``leaderboard_budget_s`` seconds)."""
    queries = data.leaderboard_queries(sizes)
    guild = data.LEADERBOARD_GUILD
    report.note(
        LEADERBOARD,
        f"One guild of {sizes.leaderboard_members:,} members; up to {len(queries):,} calls of "
        f"each kind (at most {sizes.leaderboard_budget_s:.0f} s per kind and implementation), "
        "sequential; 'first call' is the first rank query after loading (botdata builds its "
        "Redis rank set then).",
    )
    for key, impl in impls.items():
        log.info("  %s: loading %d members", key, sizes.leaderboard_members)
        await impl.load_leaderboard(data.leaderboard_rows(sizes))
        started = time.perf_counter()
        await impl.rank(guild, queries[0])
        first = time.perf_counter() - started
        report.metric(LEADERBOARD, "first call", "ms", "lower").values[key] = first * 1000

        async def rank(member_id: int, impl: Implementation = impl) -> None:
            await impl.rank(guild, member_id)

        async def top(_: int, impl: Implementation = impl) -> None:
            await impl.top10(guild)

        log.info("  %s: rank and top 10", key)
        ranks = await run_sequential(rank, queries, sizes.leaderboard_budget_s)
        tops = await run_sequential(top, range(len(queries)), sizes.leaderboard_budget_s)
        _latency(report, LEADERBOARD, "rank", key, Latency.of_ns(ranks.latencies_ns))
        _latency(report, LEADERBOARD, "top 10", key, Latency.of_ns(tops.latencies_ns))
        if ranks.calls < len(queries) or tops.calls < len(queries):
            report.note(
                LEADERBOARD,
                f"({key}) time budget reached: {ranks.calls:,} rank and {tops.calls:,} top-10 "
                "calls.",
            )


# 5 ---------------------------------------------------------------------------------------------


async def reminders(impls: Impls, sizes: Sizes, report: Report) -> None:
    """``reminders`` pending, ``reminders_due`` of them due within ``due_window_s``: the
    dispatcher starts, idles ``idle_window_s`` with nothing due (process CPU measured), then
    delivers; lateness = delivery time - due time."""
    far, soon = data.reminder_rows(sizes)
    settle = 1.0
    report.note(
        REMINDERS,
        f"{sizes.reminders:,} pending, {len(soon):,} due within {sizes.due_window_s:.0f} s; "
        f"idle CPU = this process's CPU time over {sizes.idle_window_s:.0f} s with nothing due "
        "(dispatcher running), as a share of one core; the database's own work is not in it.",
    )
    for key, impl in impls.items():
        log.info("  %s: loading %d reminders", key, sizes.reminders)
        await impl.load_reminders(far, data.utcnow())
        window = data.utcnow() + timedelta(seconds=settle + sizes.idle_window_s + 1.0)
        await impl.load_reminders(soon, window)
        lateness, idle = await _dispatch(impl, sizes, len(soon), window, settle)
        if len(lateness) < len(soon):
            report.note(REMINDERS, f"({key}) only {len(lateness):,} of {len(soon):,} delivered.")
        latency = Latency.of_s(lateness)
        report.metric(REMINDERS, "lateness p50", "ms", "lower").values[key] = latency.p50_ms
        report.metric(REMINDERS, "lateness p99", "ms", "lower").values[key] = latency.p99_ms
        report.metric(REMINDERS, "lateness max", "ms", "lower").values[key] = latency.max_ms
        report.metric(REMINDERS, "idle CPU", "% of a core", "lower").values[key] = idle * 100


async def _dispatch(
    impl: Implementation, sizes: Sizes, expected: int, window: datetime, settle: float
) -> tuple[list[float], float]:
    """Run the dispatcher: idle CPU over the idle window, then the lateness (seconds) of each
    delivery until ``expected`` were delivered (or a minute past the due window)."""
    lateness: dict[int, float] = {}
    done = asyncio.Event()

    def deliver(reminder_id: int, due_at: datetime) -> None:
        lateness.setdefault(reminder_id, time.time() - due_at.timestamp())
        if len(lateness) >= expected:
            done.set()

    await impl.start_dispatcher(deliver)
    try:
        await asyncio.sleep(settle)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(sizes.idle_window_s)
        idle = (time.process_time() - cpu) / (time.perf_counter() - wall)
        log.info("  %s: idle CPU %.2f%%; waiting for deliveries", impl.key, idle * 100)
        timeout = (window - data.utcnow()).total_seconds() + sizes.due_window_s + 60
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), timeout)
    finally:
        await impl.stop_dispatcher()
    return list(lateness.values()), idle


# 6 ---------------------------------------------------------------------------------------------


async def prefix_lookup(impls: Impls, sizes: Sizes, report: Report) -> None:
    """The prefix of a guild whose configuration was read before, ``prefix_calls`` times in a
    loop (``prefix_db_calls`` for the implementations that query the database each time)."""
    guilds = data.prefix_guilds()
    report.note(
        PREFIX,
        f"{len(guilds.guilds)} guilds cycled; mean = loop time / calls; p99 from timing each "
        "call (adds about 0.1 us). (b) and (c) read the database on every call.",
    )
    for key, impl in impls.items():
        await impl.load_pipeline(guilds)
        await impl.warm_prefix(guilds.guilds)
        lookup = impl.prefix_lookup()
        calls = sizes.prefix_calls if key == "a" else sizes.prefix_db_calls
        ids = [guilds.guilds[i % len(guilds.guilds)] for i in range(calls)]
        log.info("  %s: %d lookups", key, calls)
        started = time.perf_counter_ns()
        for guild_id in ids:
            await lookup(guild_id)
        mean_us = (time.perf_counter_ns() - started) / calls / 1000
        timed = await run_sequential(lookup, ids)
        report.metric(PREFIX, "time per call (mean)", "us", "lower").values[key] = mean_us
        report.metric(PREFIX, "time per call p99", "us", "lower").values[key] = (
            Latency.of_ns(timed.latencies_ns).p99_ms * 1000
        )


#: Every workload, by number: its title and its driver.
WORKLOADS: dict[str, tuple[str, Workload]] = {
    "1": (PIPELINE, message_pipeline),
    "2": (CASES, case_creation),
    "3": (HISTORY, case_history),
    "4": (LEADERBOARD, leaderboard),
    "5": (REMINDERS, reminders),
    "6": (PREFIX, prefix_lookup),
}


# Targets ---------------------------------------------------------------------------------------


def targets(report: Report, sizes: Sizes) -> list[Target]:
    """The issue's targets, judged on this run's numbers (reported, never asserted)."""
    found: list[Target] = []

    def ratio(workload: str, name: str, impl: str, goal: float, text: str) -> None:
        a, other = report.value(workload, name, "a"), report.value(workload, name, impl)
        if a is None or other is None or other == 0:
            found.append(Target(text, "-", None))
            return
        value = a / other
        found.append(Target(text, f"{fmt(value)}x", value >= goal))

    def ceiling(workload: str, name: str, goal: float, unit: str, text: str) -> None:
        value = report.value(workload, name, "a")
        if value is None:
            found.append(Target(text, "-", None))
            return
        found.append(Target(text, f"{fmt(value)} {unit}", value <= goal))

    ratio(PIPELINE, "throughput", "b", 2.0, "message pipeline >= 2x handwritten throughput")
    ratio(PIPELINE, "throughput", "c", 5.0, "message pipeline >= 5x seed-style throughput")
    for metric in report.metrics:
        if metric.workload == CASES and metric.name.startswith("throughput"):
            shape = metric.name.split(", ", 1)[1]
            ratio(CASES, metric.name, "b", 0.8, f"case creation ({shape}) >= 0.8x handwritten")
    ceiling(HISTORY, "warm p50", 0.2, "ms", "warm case history p50 <= 0.2 ms")
    members = f"{sizes.leaderboard_members:,} members"
    ceiling(LEADERBOARD, "rank p50", 1.0, "ms", f"rank p50 <= 1 ms at {members}")
    ceiling(LEADERBOARD, "top 10 p50", 1.0, "ms", f"top-10 p50 <= 1 ms at {members}")
    ceiling(REMINDERS, "lateness p99", 1000.0, "ms", "reminder lateness p99 <= 1 s")
    ceiling(REMINDERS, "idle CPU", 1.0, "% of a core", "near-zero idle CPU (<= 1% of a core)")
    ceiling(PREFIX, "time per call (mean)", 2.0, "us", "prefix lookup <= 2 us")
    return found
