"""The time botdata reads: the real clock, or a :class:`ManualClock` a test moves by hand.

Every handle has a clock (``db.clock``, :class:`Clock` unless ``connect(clock=...)`` gave
another). The managers take "now" from it, the reminder dispatcher and the cogs' expiry loops
sleep on it, and the cache reads its monotonic time, so a test that sets a
:class:`ManualClock` fires due reminders and expiries with ``await clock.advance(minutes=5)``
instead of sleeping.

A task that sleeps on a clock is driven by it (the dispatcher, the expiry loops): a
:class:`ManualClock` lets its driven tasks finish what they are doing (a pass woken early by a
new reminder, say) before it moves time. :meth:`Clock.move_sleepers` hands the driven tasks of
one clock to another, each sleep keeping the time it had left (``db.clock = other`` does it),
so a loop that was asleep when a test swapped the clock wakes on the new one.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from botdata.errors import ClockNotSettledError, InvalidClockStepError

#: Real seconds :meth:`ManualClock.advance` waits for the tasks it woke to settle.
SETTLE_TIMEOUT: Final = 5.0
# Real seconds between two looks at whether the woken tasks have settled.
_SETTLE_POLL: Final = 0.001

_order = itertools.count()


@dataclass(eq=False)
class _Sleep:
    """One task's pending :meth:`Clock.sleep`: woken by resolving ``future``."""

    future: asyncio.Future[None]
    task: asyncio.Task[Any] | None
    deadline: float  # on the monotonic time of the clock holding it
    order: int = field(default_factory=lambda: next(_order))
    timer: asyncio.TimerHandle | None = None
    owner: Clock | None = None  # the clock holding it (a moved sleep changes clock)


def _ring(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Clock:
    """The real clock: the default of every handle."""

    def __init__(self) -> None:
        self._sleeps: set[_Sleep] = set()
        # Tasks that slept on this clock (or were moved onto it), alive or not.
        self._driven: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    def now(self) -> datetime:
        """Returns the current time: an aware datetime in UTC."""
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        """Returns seconds that only ever grow (``time.monotonic``), for intervals and TTLs."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock (a zero or negative wait only yields to the loop).

        Returns when the time has come, or early when the sleeper is moved to another clock
        whose time for it comes sooner. Raises :class:`asyncio.CancelledError` when cancelled.
        """
        task = asyncio.current_task()
        if task is not None:
            self._driven.add(task)
        if not seconds > 0:  # NaN included
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        sleep = _Sleep(loop.create_future(), task, self.monotonic() + seconds)
        self._hold(sleep)
        try:
            await sleep.future
        finally:
            if sleep.owner is not None:
                sleep.owner._release(sleep)

    def drive(self, task: asyncio.Task[Any]) -> None:
        """Count ``task`` as driven by this clock from now on, as if it had slept on it: a
        :class:`ManualClock` lets it run until it sleeps on the clock (or ends) before moving
        time. A loop started on a handle calls it with its task, so that a test advancing
        the clock at once does not overtake the loop's first pass. Returns None."""
        self._driven.add(task)

    def move_sleepers(self, to: Clock) -> None:
        """Hand the tasks driven by this clock to ``to``: each sleeping one sleeps on ``to``
        for the seconds it had left (``db.clock = to`` calls it). Returns None."""
        if to is self:
            return
        to._driven.update(self._driven)
        self._driven.clear()
        for sleep in sorted(self._sleeps, key=lambda s: s.order):
            left = sleep.deadline - self.monotonic()
            self._release(sleep)
            sleep.deadline = to.monotonic() + left
            to._hold(sleep)

    def _hold(self, sleep: _Sleep) -> None:
        """Keep ``sleep`` and wake it at its deadline."""
        self._sleeps.add(sleep)
        sleep.owner = self
        delay = max(sleep.deadline - self.monotonic(), 0.0)
        sleep.timer = sleep.future.get_loop().call_later(delay, _ring, sleep.future)

    def _release(self, sleep: _Sleep) -> None:
        """Forget ``sleep`` (woken, cancelled or moved)."""
        self._sleeps.discard(sleep)
        sleep.owner = None
        if sleep.timer is not None:
            sleep.timer.cancel()
            sleep.timer = None


class ManualClock(Clock):
    """A clock that moves only when :meth:`advance` is awaited; for tests.

    Set it on a handle (``connect(clock=...)`` or ``db.clock = ManualClock()``), then
    ``await clock.advance(minutes=5)``: due reminders are delivered and expired cases and AFK
    statuses ended by the time it returns, with no real waiting.

    ``start`` (default: the real current time) is converted to UTC. Its monotonic time starts
    at the real ``time.monotonic()``, so cache entries stored before it was set keep their
    TTLs. :attr:`settle_timeout` bounds (in real seconds) how long :meth:`advance` waits for
    the tasks it woke.

    Raises :class:`~botdata.errors.InvalidClockStepError` when ``start`` is not an aware
    datetime.
    """

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__()
        if start is None:
            start = datetime.now(timezone.utc)
        if not isinstance(start, datetime) or start.utcoffset() is None:
            raise InvalidClockStepError(f"start must be a timezone-aware datetime, not {start!r}")
        self._now = start.astimezone(timezone.utc)
        self._monotonic = time.monotonic()
        self.settle_timeout = SETTLE_TIMEOUT

    def now(self) -> datetime:
        """Returns this clock's time: an aware datetime in UTC, moved only by :meth:`advance`."""
        return self._now

    def monotonic(self) -> float:
        """Returns this clock's monotonic seconds, moved only by :meth:`advance`."""
        return self._monotonic

    async def advance(self, delta: timedelta | None = None, /, **parts: float) -> None:
        """Move time forward by ``delta`` or ``timedelta(**parts)`` (``advance(minutes=5)``).

        First the tasks this clock drives (that slept on it) and that are running (woken
        early, say the reminder dispatcher by a new reminder) run until each sleeps on it
        again or ends. Then the time jumps to its new value and every sleeper whose time came
        wakes, in the order of their deadlines (ties: the order they went to sleep), one
        deadline at a time: the driven tasks run until each sleeps on this clock again (or has
        ended) before the next deadline's sleepers wake. A task woken sleeps again from the
        new time, so each sleeper wakes at most once per call: advance in several steps to run
        a loop several times.

        Returns once the last woken tasks have settled. Raises
        :class:`~botdata.errors.InvalidClockStepError` (no step, a negative one, both a delta
        and parts, parts :class:`datetime.timedelta` does not take) and
        :class:`~botdata.errors.ClockNotSettledError` when driven tasks have not settled within
        :attr:`settle_timeout` real seconds (each wait has its own bound).
        """
        step = self._step(delta, parts)
        await self._settle(set(self._driven))
        self._now += step
        self._monotonic += step.total_seconds()
        due = sorted(
            (s for s in self._sleeps if s.deadline <= self._monotonic),
            key=lambda s: (s.deadline, s.order),
        )
        for _, group in itertools.groupby(due, key=lambda s: s.deadline):
            woken = [s for s in group if not s.future.done()]
            for sleep in woken:
                _ring(sleep.future)
            await self._settle(set(self._driven))

    @staticmethod
    def _step(delta: timedelta | None, parts: dict[str, float]) -> timedelta:
        if delta is not None and parts:
            raise InvalidClockStepError("give advance() a timedelta or its parts, not both")
        if delta is None:
            if not parts:
                raise InvalidClockStepError("advance() needs a step, e.g. advance(minutes=5)")
            try:
                delta = timedelta(**parts)
            except (TypeError, OverflowError) as exc:
                raise InvalidClockStepError(f"advance({parts}) is not a step: {exc}") from exc
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            raise InvalidClockStepError(f"advance() needs a non-negative timedelta, not {delta!r}")
        return delta

    async def _settle(self, tasks: set[asyncio.Task[Any]]) -> None:
        """Wait until each of ``tasks`` (but the caller) sleeps on this clock or has ended."""
        deadline = time.monotonic() + self.settle_timeout
        tasks.discard(asyncio.current_task())
        while True:
            await asyncio.sleep(0)
            sleeping = {s.task for s in self._sleeps if not s.future.done()}
            running = [t for t in tasks if not t.done() and t not in sleeping]
            if not running:
                return
            if time.monotonic() >= deadline:
                names = ", ".join(sorted(t.get_name() for t in running))
                raise ClockNotSettledError(
                    f"advance(): {names} did not sleep on the clock again or end within "
                    f"{self.settle_timeout:g} s"
                )
            await asyncio.sleep(_SETTLE_POLL)

    def _hold(self, sleep: _Sleep) -> None:
        """Keep ``sleep`` until :meth:`advance` reaches its deadline."""
        self._sleeps.add(sleep)
        sleep.owner = self


__all__ = ["SETTLE_TIMEOUT", "Clock", "ManualClock"]
