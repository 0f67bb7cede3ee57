"""What the distribution ships and how it sits beside a bot.

- ``botdata`` imports without discord.py (a dashboard or a script installs it alone).
- The wheel built from the repository holds every module of ``botdata/``, ``cogs/`` (as
  ``botdata_cogs``) and ``migrations/`` (as ``botdata.migrations``), ``py.typed`` in both
  packages and the licence, and nothing else at the top level (no ``cogs``, no demo helpers).
- Installed, it loads beside a bot that has its own ``cogs`` package: both extensions answer
  commands in one bot (dpytest), and ``import cogs`` is the bot's.
- The checkout's editable install (the README's ``pip install -e``) serves ``botdata_cogs`` from
  ``cogs/`` and no ``cogs`` package.

Not about a database backend: these run once, the installed bot on SQLite and the in-process
cache.
"""

from __future__ import annotations

import email
import json
import zipfile
from pathlib import Path

import pytest

import botdata
from tests.support import ROOT, build_wheel, install_wheel, run_python

# Folders of the repository and the package each installs as.
PACKAGED = {"botdata": "botdata", "cogs": "botdata_cogs", "migrations": "botdata/migrations"}

NO_DISCORD = """
import importlib.abc, pkgutil, sys

class NoDiscord(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "discord" or name.startswith("discord."):
            raise ImportError(f"botdata imported {name}")
        return None

sys.meta_path.insert(0, NoDiscord())
import botdata
names = [m.name for m in pkgutil.walk_packages(botdata.__path__, "botdata.")]
for name in names:
    __import__(name)
assert not any(n == "discord" or n.startswith("discord.") for n in sys.modules)
print(len(names))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_botdata_imports_every_module_without_discord() -> None:
    count = int(run_python(NO_DISCORD))
    assert count > 20  # every module was walked, not just the package


@pytest.mark.slow  # building the wheel: about 12 s
def test_the_wheel_holds_the_packages_typed_licensed_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{target}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, target in PACKAGED.items()
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected - names == set(), "modules of the repository missing from the wheel"
    assert {"botdata/py.typed", "botdata_cogs/py.typed"} <= names
    top = {name.split("/")[0] for name in names}
    dist_info = f"botdata-{botdata.__version__}.dist-info"
    assert top == {"botdata", "botdata_cogs", dist_info}
    assert f"{dist_info}/licenses/LICENSE" in names

    metadata = email.message_from_bytes(zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA"))
    assert metadata["Version"] == botdata.__version__
    assert metadata["License-Expression"] == "MIT"
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    discord_requirements = [r for r in metadata.get_all("Requires-Dist") if "discord" in r]
    assert discord_requirements, "the cogs extra must require discord.py"
    assert all('extra == "cogs"' in r for r in discord_requirements), discord_requirements


BOT_COG = """
from discord.ext import commands


class Greetings(commands.Cog):
    @commands.command()
    async def hello(self, ctx: commands.Context) -> None:
        await ctx.send("hello from the bot's own cogs")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Greetings())
"""

BOT = """
import asyncio, json
import discord
import discord.ext.test as dpytest
from discord.ext import commands

import botdata, botdata_cogs, cogs


async def say(content):
    await dpytest.message(content)
    return (await dpytest.sent_queue.get()).content


async def main():
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    await bot._async_setup_hook()
    dpytest.configure(bot)
    await bot.load_extension("cogs.greetings")
    await bot.load_extension("botdata_cogs")  # connects botdata from the settings
    replies = [await say("!hello"), await say("!afk lunch")]
    extensions = sorted(bot.extensions)
    await bot.unload_extension("botdata_cogs")  # closes the handle it opened
    await dpytest.empty_queue()
    print(json.dumps({
        "files": {m.__name__: m.__file__ for m in (botdata, botdata_cogs, cogs)},
        "extensions": extensions,
        "replies": replies,
    }))


asyncio.run(main())
"""


@pytest.mark.slow  # the wheel, then a bot process: about 20 s
def test_the_installed_wheel_loads_beside_a_bot_with_its_own_cogs_package(
    wheel: Path, tmp_path: Path
) -> None:
    site = install_wheel(wheel, tmp_path / "site")
    project = tmp_path / "mybot"
    (project / "cogs").mkdir(parents=True)
    (project / "cogs" / "__init__.py").write_text('"""The bot\'s own cogs."""\n')
    (project / "cogs" / "greetings.py").write_text(BOT_COG)
    # The wheel's directory comes before this environment's editable botdata on sys.path.
    env = {
        "PYTHONPATH": str(site),
        "DATABASE_URL": f"sqlite://{tmp_path / 'bot.sqlite3'}",
        "REDIS_URL": "",
    }
    seen = json.loads(run_python(BOT, cwd=project, env=env).splitlines()[-1])

    files = {name: Path(file) for name, file in seen["files"].items()}
    assert files["botdata"].is_relative_to(site)
    assert files["botdata_cogs"].is_relative_to(site)
    assert files["cogs"] == project / "cogs" / "__init__.py"
    assert "cogs.greetings" in seen["extensions"]
    assert "botdata_cogs.afk" in seen["extensions"]
    hello, afk = seen["replies"]
    assert hello == "hello from the bot's own cogs"
    assert "is AFK" in afk
    assert "lunch" in afk


def test_the_editable_checkout_serves_botdata_cogs_from_the_cogs_folder(tmp_path: Path) -> None:
    if not Path(botdata.__file__).is_relative_to(ROOT):
        pytest.skip("botdata is not installed from this checkout with pip install -e")
    seen = run_python(
        """
        import importlib.util, json
        import botdata_cogs, botdata_cogs.moderation
        print(json.dumps([
            botdata_cogs.__file__, botdata_cogs.EXTENSIONS[0], importlib.util.find_spec("cogs")
            is None
        ]))
        """,
        cwd=tmp_path,  # outside the checkout: only the install puts it on the path
    )
    file, first, no_cogs = json.loads(seen)
    assert Path(file) == ROOT / "cogs" / "__init__.py"
    assert first == "botdata_cogs.config"
    assert no_cogs, "the editable install exposes a top-level cogs package"
