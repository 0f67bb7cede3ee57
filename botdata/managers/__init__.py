"""Managers: the only code that touches models and the cache. Reached as ``db.<name>``."""
