"""botdata: the data layer for discord.py community bots.

``db = await botdata.connect()`` opens it; everything is reached through ``db``.
"""

from botdata.clock import Clock, ManualClock
from botdata.config import Settings, load_settings
from botdata.database import Database, connect

__all__ = ["Clock", "Database", "ManualClock", "Settings", "connect", "load_settings"]
__version__ = "0.1.0"
