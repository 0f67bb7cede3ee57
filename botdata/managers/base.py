"""What every manager shares."""

from __future__ import annotations

from functools import lru_cache, partial
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from botdata.cache import Cache
    from botdata.config import Settings
    from botdata.database import Database

#: Guilds whose keys :meth:`Manager.guild_keys` remembers, per key name.
GUILD_KEYS: Final = 16_384


class GuildKeys(Protocol):
    """Builds the keys of one key name (see :meth:`Manager.guild_keys`)."""

    def __call__(self, guild_id: int, /, *more: object) -> str:
        """``cache.key(*parts, *more, guild_id=guild_id)``."""


class Manager:
    """Base of the managers: holds the handle, its settings and its cache."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.settings: Settings = db.settings
        self.cache: Cache = db.cache

    def guild_keys(self, *parts: object) -> GuildKeys:
        """The keys of key name ``parts``, which this manager owns: ``keys(guild_id, *more)``
        is ``cache.key(*parts, *more, guild_id=guild_id)`` (``more`` for keys per member, say),
        remembering the last :data:`GUILD_KEYS` keys built (the per-message paths build the
        same keys over and over). Pass ints only (the ids of a hot path, once validated or
        about to be).

        Every manager builds the keys it caches under this way, so no other code needs their
        names: a guild's cached copies are dropped as a whole by ``cache.invalidate_guild``.
        """
        keys: GuildKeys = lru_cache(maxsize=GUILD_KEYS)(partial(self._guild_key, parts))
        return keys

    def _guild_key(self, parts: tuple[object, ...], guild_id: int, *more: object) -> str:
        return self.cache.key(*parts, *more, guild_id=guild_id)
