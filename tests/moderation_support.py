"""Helpers of the moderation tests (cases, case types, notes)."""

from __future__ import annotations

from typing import Any

from botdata.models import Case, CaseEdit, CustomCaseType, Guild, Note

GUILD = 100_000_000_000_000_001
OTHER_GUILD = 100_000_000_000_000_002
USER = 200_000_000_000_000_001
OTHER_USER = 200_000_000_000_000_002
MOD = 300_000_000_000_000_001
OTHER_MOD = 300_000_000_000_000_002


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of the moderation tables and of ``guilds`` (deleted notes included)."""
    return {
        "guilds": await Guild.all().order_by("id").values(),
        "cases": await Case.all().order_by("id").values(),
        "case_edits": await CaseEdit.all().order_by("id").values(),
        "notes": await Note.all_objects.all().order_by("id").values(),
        "custom_case_types": await CustomCaseType.all().order_by("id").values(),
    }
