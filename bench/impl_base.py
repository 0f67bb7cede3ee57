"""What every implementation provides: one method (or a load + call pair) per workload.

The workload drivers in :mod:`bench.workloads` time the calls; implementations only do the work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime

from bench.data import HistoryData, Message, PipelineData, ReminderRow
from bench.services import Resources
from bench.sizes import Sizes

#: Called by a dispatcher for each delivered reminder: (reminder id, its due time).
Deliver = Callable[[int, datetime], None]


class Implementation(ABC):
    """One of the three compared implementations, on its own database and Redis prefix."""

    #: "a", "b" or "c".
    key: str

    def __init__(self, resources: Resources, sizes: Sizes) -> None:
        self.resources = resources
        self.sizes = sizes
        #: Messages of workload 1 that earned XP.
        self.granted = 0

    def describe(self) -> str:
        """The configuration that matters for the numbers (pool sizes, timeouts), one line."""
        return ""

    def incidents(self) -> list[str]:
        """What went wrong but did not stop the run since the last call (then forgotten)."""
        return []

    @abstractmethod
    async def open(self) -> None:
        """Build the schema in the (already created, empty) database and connect."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect (the runner drops the database and the Redis keys)."""

    # 1. Message pipeline -------------------------------------------------------------------------

    @abstractmethod
    async def load_pipeline(self, data: PipelineData) -> None:
        """Store the guilds, configurations, AFK members and XP rows."""

    @abstractmethod
    async def handle_message(self, message: Message) -> None:
        """Per incoming message: prefix lookup, AFK check of the author and the mentioned
        members, XP grant with cooldown."""

    # 2. Case creation ----------------------------------------------------------------------------

    @abstractmethod
    async def load_case_guilds(self, guilds: Sequence[int]) -> None:
        """Create the guilds cases will be made in (counters at 0)."""

    @abstractmethod
    async def create_case(self, guild_id: int, user_id: int, moderator_id: int) -> None:
        """Record a WARN case with the guild's next number."""

    @abstractmethod
    async def case_numbers(self, guilds: Sequence[int]) -> dict[int, list[int]]:
        """Every guild's case numbers, sorted (for the 1..N check)."""

    # 3. Case history -----------------------------------------------------------------------------

    @abstractmethod
    async def load_history(self, data: HistoryData) -> None:
        """Store the guild's cases."""

    @abstractmethod
    async def forget_cached_cases(self) -> None:
        """Empty whatever cache serves case history (the next calls are cold)."""

    @abstractmethod
    async def user_cases(self, guild_id: int, user_id: int) -> int:
        """A member's case history page (newest first); returns how many cases it holds."""

    # 4. Leaderboard ------------------------------------------------------------------------------

    @abstractmethod
    async def load_leaderboard(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """Store the big guild's XP rows."""

    @abstractmethod
    async def rank(self, guild_id: int, member_id: int) -> int:
        """The member's 1-based rank by XP."""

    @abstractmethod
    async def top10(self, guild_id: int) -> list[tuple[int, int]]:
        """The first leaderboard page: (member_id, xp) of the 10 members with most XP."""

    # 5. Reminders --------------------------------------------------------------------------------

    @abstractmethod
    async def load_reminders(self, rows: Sequence[ReminderRow], base: datetime) -> None:
        """Store reminders due at ``base + row.due_in``."""

    @abstractmethod
    async def start_dispatcher(self, deliver: Deliver) -> None:
        """Start delivering due reminders, calling ``deliver`` for each."""

    @abstractmethod
    async def stop_dispatcher(self) -> None:
        """Stop the dispatcher."""

    # 6. Prefix lookup ----------------------------------------------------------------------------

    @abstractmethod
    async def prefix(self, guild_id: int) -> str:
        """The guild's command prefix."""

    def prefix_lookup(self) -> Callable[[int], Awaitable[str]]:
        """The function workload 6 times (the implementation's own, without a wrapper)."""
        return self.prefix

    async def warm_prefix(self, guild_ids: Sequence[int]) -> None:
        """Prepare the prefix lookups of ``guild_ids`` (fill a cache). Default: nothing."""
        for guild_id in guild_ids:
            await self.prefix(guild_id)
