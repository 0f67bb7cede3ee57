"""``botdata_clock``: the handle reads it for the test (needs ``botdata.clock``, from the branch
``clock``: this file fails with ModuleNotFoundError until that lands)."""

from __future__ import annotations

from typing import Any

import botdata


async def test_the_handle_reads_the_clock_for_the_test(
    botdata_db: botdata.Database, botdata_clock: Any
) -> None:
    from botdata.clock import ManualClock  # type: ignore[import-not-found, unused-ignore]

    assert isinstance(botdata_clock, ManualClock)
    assert botdata_db.clock is botdata_clock  # type: ignore[attr-defined, unused-ignore]
    await botdata_clock.advance(minutes=5)
