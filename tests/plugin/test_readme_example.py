"""The README's "Testing your own cogs" example works in a bot's project with botdata installed
from the wheel: pytest finds the plugin through its entry point (it loads the bot side), nothing
else configured.

The example block is read from README.md, so the README cannot drift from what works.
"""

from __future__ import annotations

import re

import pytest

from tests.support import ROOT, build_wheel, install_wheel

pytest_plugins = ["pytester"]

SECTION = (ROOT / "README.md").read_text(encoding="utf-8").split("## Testing your own cogs", 1)[1]
[EXAMPLE, SETTINGS] = re.findall(r"```(?:python|toml)\n(.*?)```", SECTION, re.S)[:2]

WHERE = """
import botdata.testing.plugin, botdata_cogs.testing

def test_the_plugins_come_from_the_wheel():
    assert botdata.testing.plugin.__file__.startswith({site!r})
    assert botdata_cogs.testing.__file__.startswith({site!r})
"""


@pytest.mark.slow  # the wheel, then a pytest run on both backends: about 30 s
def test_the_readme_example_passes_from_the_installed_wheel(
    pytester: pytest.Pytester,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = install_wheel(build_wheel(tmp_path_factory.mktemp("wheel")), pytester.path / "site")
    pytester.makefile(".toml", pyproject=SETTINGS)
    pytester.mkpydir("tests")
    pytester.path.joinpath("tests", "test_strikes.py").write_text(EXAMPLE, encoding="utf-8")
    pytester.path.joinpath("tests", "test_where.py").write_text(
        WHERE.format(site=str(site)), encoding="utf-8"
    )
    # The wheel's folder comes before this environment's editable botdata.
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "tests")
    result.assert_outcomes(passed=3)  # the example on both backends, and where it came from
