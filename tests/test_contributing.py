"""CONTRIBUTING.md points at real files and names: its worked example matches the code.

Every backticked repository path (``botdata/...``, ``cogs/...``, ``tests/...``, ``migrations/...``)
must exist, and every backticked dotted name under ``botdata`` or ``botdata_cogs`` must import
(a module, then attributes of it).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
SPANS = re.findall(r"`([^`\n]+)`", GUIDE)
# Paths with a <placeholder> are templates of new files, not checked.
PATHS = sorted(
    {span for span in SPANS if re.fullmatch(r"(botdata|cogs|tests|migrations)/[^<\s]*", span)}
)
NAMES = sorted({span for span in SPANS if re.fullmatch(r"botdata(_cogs)?(\.\w+)+", span)})


def _resolve(dotted: str) -> object:
    """The module or attribute ``dotted`` names: the longest importable module prefix, then
    attributes of it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def test_the_guide_names_enough_to_check() -> None:
    assert len(PATHS) >= 10
    assert len(NAMES) >= 10


@pytest.mark.parametrize("path", PATHS)
def test_each_path_exists(path: str) -> None:
    assert (ROOT / path).exists(), path


@pytest.mark.parametrize("name", NAMES)
def test_each_name_imports(name: str) -> None:
    _resolve(name)
