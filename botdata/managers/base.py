"""What every manager shares."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from botdata.cache import Cache
    from botdata.config import Settings
    from botdata.database import Database

#: Guilds whose keys :meth:`Manager.guild_keys` remembers, per key name.
GUILD_KEYS: Final = 16_384


class Manager:
    """Base of the managers: holds the handle, its settings and its cache."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.settings: Settings = db.settings
        self.cache: Cache = db.cache

    def guild_keys(self, *parts: object) -> Callable[[int], str]:
        """``guild_id -> cache.key(*parts, guild_id=guild_id)``, remembering the keys of the
        last :data:`GUILD_KEYS` guilds (the per-message paths build the same keys over and
        over). Pass ints only (the ids of a hot path, once validated or about to be)."""
        return lru_cache(maxsize=GUILD_KEYS)(partial(self._guild_key, parts))

    def _guild_key(self, parts: tuple[object, ...], guild_id: int) -> str:
        return self.cache.key(*parts, guild_id=guild_id)
