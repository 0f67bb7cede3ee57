"""botdata: the data layer for discord.py community bots.

``db = await botdata.connect()`` opens it; everything is reached through ``db``.
"""

from botdata.config import Settings, load_settings
from botdata.database import Database, connect

__all__ = ["Database", "Settings", "connect", "load_settings"]
__version__ = "0.1.0"
