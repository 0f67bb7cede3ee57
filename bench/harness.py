"""Timing, statistics, sampling and the result table shared by every workload."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

#: The three implementations, in table order.
IMPLS: tuple[str, ...] = ("a", "b", "c")
IMPL_NAMES: dict[str, str] = {
    "a": "botdata",
    "b": "handwritten (asyncpg + redis-py)",
    "c": "seed-style (SQLModel + SQLAlchemy async)",
}


# Timing ----------------------------------------------------------------------------------------


@dataclass
class Timed:
    """What a timed run measured: wall time, this process's CPU time (every thread) and the
    latency of every call (nanoseconds)."""

    wall_s: float
    latencies_ns: list[int]
    cpu_s: float = 0.0

    @property
    def calls(self) -> int:
        """Number of calls made."""
        return len(self.latencies_ns)

    @property
    def cpu_per_call_us(self) -> float:
        """This process's CPU time per call, in microseconds."""
        return self.cpu_s / self.calls * 1e6 if self.calls else math.nan

    @property
    def rate(self) -> float:
        """Calls per second over the wall time."""
        return self.calls / self.wall_s if self.wall_s > 0 else math.inf


async def run_concurrent(
    op: Callable[[T], Awaitable[object]], items: Sequence[T], concurrency: int
) -> Timed:
    """Call ``await op(item)`` for every item with ``concurrency`` workers pulling from one queue.

    Returns the wall time of the whole run and each call's latency. An exception in ``op``
    stops the run and propagates.
    """
    source = iter(items)
    latencies: list[int] = []
    clock = time.perf_counter_ns

    async def worker() -> None:
        for item in source:
            started = clock()
            await op(item)
            latencies.append(clock() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Timed(time.perf_counter() - started, latencies, time.process_time() - cpu)


async def run_sequential(
    op: Callable[[T], Awaitable[object]], items: Iterable[T], budget_s: float = math.inf
) -> Timed:
    """Call ``await op(item)`` for each item, one at a time, until the items or ``budget_s``
    seconds run out (at least one call is made). Returns wall time and latencies."""
    latencies: list[int] = []
    clock = time.perf_counter_ns
    started = time.perf_counter()
    deadline = started + budget_s
    for item in items:
        begun = clock()
        await op(item)
        latencies.append(clock() - begun)
        if time.perf_counter() >= deadline:
            break
    return Timed(time.perf_counter() - started, latencies)


# Statistics ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    """Latency summary in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of_ns(cls, latencies_ns: Sequence[int]) -> Latency:
        """Summarise latencies given in nanoseconds."""
        ms = [value / 1e6 for value in latencies_ns]
        return cls(len(ms), percentile(ms, 50), percentile(ms, 99), max(ms, default=math.nan))

    @classmethod
    def of_s(cls, latencies_s: Sequence[float]) -> Latency:
        """Summarise latencies given in seconds."""
        return cls.of_ns([round(value * 1e9) for value in latencies_s])


# Sampling --------------------------------------------------------------------------------------


class Zipf(Generic[T]):
    """Draws items with Zipf-distributed popularity: the k-th item (1-based) has weight 1/k^s.

    ``items`` are taken in the order given (shuffle them first for a random popularity order).
    """

    def __init__(self, items: Sequence[T], s: float = 1.1) -> None:
        self.items = list(items)
        self.cum_weights = list(
            itertools.accumulate(1.0 / (k**s) for k in range(1, len(self.items) + 1))
        )

    def sample(self, rng: random.Random, count: int) -> list[T]:
        """``count`` independent draws (with replacement)."""
        return rng.choices(self.items, cum_weights=self.cum_weights, k=count)


# Results ---------------------------------------------------------------------------------------

Better = Literal["higher", "lower"]


@dataclass
class Metric:
    """One measured quantity of a workload, for each implementation that reports it."""

    workload: str
    name: str
    unit: str
    better: Better
    values: dict[str, float] = field(default_factory=dict)

    def ratio(self, impl: str) -> float | None:
        """``values['a'] / values[impl]``, or None when either is missing or the divisor is 0."""
        a, other = self.values.get("a"), self.values.get(impl)
        if a is None or other is None or other == 0 or math.isnan(a) or math.isnan(other):
            return None
        return a / other


@dataclass
class Target:
    """A target of the issue and whether this run met it (reported, never asserted)."""

    description: str
    measured: str
    met: bool | None  # None: not measured in this run


@dataclass
class Report:
    """Everything one run produced: metrics, targets, notes per workload, run facts."""

    metrics: list[Metric] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def metric(self, workload: str, name: str, unit: str, better: Better) -> Metric:
        """The metric ``(workload, name)``, created on first use."""
        for metric in self.metrics:
            if metric.workload == workload and metric.name == name:
                return metric
        metric = Metric(workload, name, unit, better)
        self.metrics.append(metric)
        return metric

    def note(self, workload: str, text: str) -> None:
        """Attach a line of explanation to ``workload``'s section."""
        self.notes.setdefault(workload, []).append(text)

    def value(self, workload: str, name: str, impl: str) -> float | None:
        """A recorded value, or None."""
        for metric in self.metrics:
            if metric.workload == workload and metric.name == name:
                return metric.values.get(impl)
        return None


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (thousands separated), or ``-``."""
    if value is None or math.isnan(value):
        return "-"
    if value == 0:
        return "0"
    if math.isinf(value):
        return "inf"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def render_workload(report: Report, workload: str) -> str:
    """The markdown table of one workload: value per implementation and the ratios."""
    lines = [
        "| metric | (a) botdata | (b) handwritten | (c) seed-style | (a)/(b) | (a)/(c) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for metric in report.metrics:
        if metric.workload != workload:
            continue
        arrow = "higher is better" if metric.better == "higher" else "lower is better"
        cells = [fmt(metric.values.get(impl)) for impl in IMPLS]
        ratios = [fmt(metric.ratio(impl), 3) for impl in ("b", "c")]
        label = f"{metric.name} ({metric.unit}, {arrow})"
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    notes = report.notes.get(workload, [])
    if notes:
        lines.append("")
        lines.extend(f"- {text}" for text in notes)
    return "\n".join(lines)


def render_targets(targets: Iterable[Target]) -> str:
    """The markdown table of the issue's targets: measured value and met/missed."""
    lines = ["| target | measured | result |", "| --- | --- | --- |"]
    for target in targets:
        result = {True: "met", False: "**missed**", None: "not measured"}[target.met]
        lines.append(f"| {target.description} | {target.measured} | {result} |")
    return "\n".join(lines)
