"""``python -m bench [--quick] [--only 1,4] [--impls a,b] [--output PATH]``: run the workloads,
print the tables and write them (with the machine's description) to ``bench/results/latest.md``.

Targets are reported as met or missed, never asserted: the exit status is 0 whenever the
harness itself worked. PostgreSQL and Redis are reached at ``$BOTDATA_BENCH_POSTGRES`` (an
account that may create databases) and ``$BOTDATA_BENCH_REDIS``; the defaults are the local
services the tests use. Each run creates its own databases and Redis keys and removes them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from bench import machine, services
from bench.harness import IMPL_NAMES, Report, render_targets, render_workload
from bench.impl_base import Implementation
from bench.sizes import FULL, QUICK, Sizes
from bench.workloads import WORKLOADS, targets

log = logging.getLogger("bench")

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
#: Report section listing each implementation's configuration.
CONFIGURATION = "configuration"

ABOUT = """\
Each workload runs the three implementations one after the other in one process, against the
same PostgreSQL and Redis; each has its own fresh database and Redis key prefix.

- (a) **botdata**: its managers (`db.guilds`, `db.afk`, `db.levels`, `db.cases`,
  `db.reminders`), default settings (pool of 10), Redis cache.
- (b) **handwritten**: raw asyncpg (pool of 10) + redis-py, minimum correct work on botdata's
  schema: per message `SELECT` prefix, `SELECT` AFK `= ANY($1)`, Redis `SET NX EX`, one
  `INSERT ... ON CONFLICT ... RETURNING`; one CTE statement per case; no in-process cache.
  See `bench/impl_handwritten.py`.
- (c) **seed-style**: the seed document's design on SQLModel + SQLAlchemy async + asyncpg: a
  session and commit per call, read-modify-write, guild config from the database for every
  message, its Redis CacheService for case history and the XP leaderboard. See
  `bench/impl_seed.py`.

Ratios are (a)'s value divided by the other's: for throughput above 1 means botdata is faster,
for latency and CPU below 1 means botdata is faster. "Client CPU" is this process's CPU time
per operation (the implementation, its ORM and drivers), not PostgreSQL's or Redis's.
botdata reads its settings from the environment like any bot (e.g. `REDIS_TIMEOUT=2 python -m
bench`); the values in effect are listed below."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI: proves it runs)")
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help="workloads to run, e.g. 1,4 (default: all)"
    )
    parser.add_argument(
        "--impls", default="a,b,c", help="implementations to run, e.g. a (profiling; default: all)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    return parser.parse_args(argv)


def load_implementations(run_id: str, sizes: Sizes, keys: list[str]) -> dict[str, Implementation]:
    """The implementations named by ``keys`` ("a", "b", "c"), on this run's resources."""
    from bench.impl_botdata import Botdata
    from bench.impl_handwritten import Handwritten

    try:
        from bench.impl_seed import Seed
    except ImportError as exc:
        raise SystemExit(
            f"the seed-style baseline needs the bench extra ({exc}): pip install -e '.[bench]'"
        ) from None
    return {
        cls.key: cls(services.resources_for(run_id, cls.key), sizes)
        for cls in (Botdata, Handwritten, Seed)
        if cls.key in keys
    }


async def run(args: argparse.Namespace) -> str:
    """Run the chosen workloads; return the markdown report."""
    sizes = QUICK if args.quick else FULL
    chosen = [number.strip() for number in args.only.split(",") if number.strip()]
    unknown = [number for number in chosen if number not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(unknown)} (choose from 1-6)")
    keys = [key.strip() for key in args.impls.split(",") if key.strip()]
    if not keys or set(keys) - set(IMPL_NAMES):
        raise SystemExit(f"--impls takes a comma-separated subset of a,b,c, not {args.impls!r}")
    description = await machine.describe(services.ADMIN_URL, services.REDIS_URL)
    run_id = f"{int(time.time())}_{os.getpid()}"
    impls = load_implementations(run_id, sizes, keys)
    report = Report()
    started = time.perf_counter()
    opened: list[Implementation] = []
    try:
        for impl in impls.values():
            log.info("opening (%s) %s", impl.key, IMPL_NAMES[impl.key])
            await services.create_database(impl.resources.database)
            await impl.open()
            opened.append(impl)
        for impl in impls.values():
            report.note(CONFIGURATION, f"({impl.key}) {impl.describe()}")
        for number in chosen:
            title, workload = WORKLOADS[number]
            log.info("workload %s", title)
            await workload(impls, sizes, report)
            for impl in impls.values():
                for text in impl.incidents():
                    report.note(title, f"({impl.key}) {text}")
    finally:
        log.info("closing and removing the databases and keys")
        for impl in reversed(opened):
            try:
                await impl.close()
            except Exception:
                log.exception("closing (%s) failed", impl.key)
        await asyncio.gather(
            *(services.drop_database(impl.resources.database) for impl in impls.values()),
            *(services.delete_keys(impl.resources.key_prefix) for impl in impls.values()),
        )
    elapsed = time.perf_counter() - started
    report.targets = targets(report, sizes)
    return render(report, description, args.quick, elapsed, sizes)


def render(
    report: Report, description: dict[str, str], quick: bool, elapsed: float, sizes: Sizes
) -> str:
    """The whole markdown report."""
    mode = "quick (small sizes: proves the harness, not the targets)" if quick else "full"
    sections = [
        "# botdata benchmark",
        "",
        f"Mode: **{mode}**; took {elapsed:.0f} s; {sizes.concurrency} concurrent callers where "
        "concurrent. Command: `python -m bench" + (" --quick`" if quick else "`"),
        "",
        "## Machine",
        "",
        machine.render(description),
        "",
        "## How",
        "",
        ABOUT,
        "",
        "Configuration in effect:",
        "",
        *(f"- {text}" for text in report.notes.get(CONFIGURATION, [])),
        "",
        "## Targets",
        "",
        render_targets(report.targets),
    ]
    workloads = list(dict.fromkeys(metric.workload for metric in report.metrics))
    for workload in workloads:
        sections += ["", f"## {workload}", "", render_workload(report, workload)]
    return "\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point: run, print, write. Returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    logging.getLogger("aerich").setLevel(logging.WARNING)
    text = asyncio.run(run(args))
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log.info("written to %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
