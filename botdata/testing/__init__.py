"""botdata's pytest plugin: test a bot's own cogs on botdata, on both backends.

Installed with the ``testing`` extra (``pip install botdata[testing]``), pytest loads it by
itself (the ``pytest11`` entry point ``botdata``: :mod:`botdata.testing.plugin`); nothing to
import or list in a ``conftest.py``.

Fixtures (see :mod:`botdata.testing.plugin`): ``botdata_db`` (a connected handle on a fresh
database, once per backend), ``botdata_backend``, ``botdata_database_url``, ``botdata_services``,
``botdata_clock``, ``redis_outage``. The bot side (``botdata_bot``, ``simulated_guild``,
:func:`botdata_cogs.testing.slash`) is :mod:`botdata_cogs.testing`, the entry point
``botdata_cogs``. Record factories: :mod:`botdata.testing.factories`.

This package imports neither discord nor pytest at import time of ``botdata``: only the
plugin module imports pytest.
"""
