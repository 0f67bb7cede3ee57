"""What every manager shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botdata.cache import Cache
    from botdata.config import Settings
    from botdata.database import Database


class Manager:
    """Base of the managers: holds the handle, its settings and its cache."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.settings: Settings = db.settings
        self.cache: Cache = db.cache
