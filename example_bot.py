"""botdata's demo bot: discord.py with every botdata cog loaded.

    DISCORD_TOKEN=... python example_bot.py   # connect to Discord (settings from the environment)
    python example_bot.py --offline           # a scripted tour in a simulated guild, no network

Offline, the bot runs in dpytest's simulated guild on the embedded default (SQLite in a fresh
temporary file and the in-process cache; nothing is left behind). A moderator warns and tempbans
a member and lists the cases, a snippet is created and used, members chat and level up, someone
goes AFK and is mentioned, a reminder fires and a message is starred; the transcript of what was
typed and what the bot said is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

import discord
from discord.ext import commands

from botdata_cogs.core import SAFE_MENTIONS, guild_prefix, handle


class DemoBot(commands.Bot):
    """A bot with per-guild prefixes from botdata and every botdata cog."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.members = True
        intents.message_content = True
        super().__init__(
            command_prefix=guild_prefix, intents=intents, allowed_mentions=SAFE_MENTIONS
        )

    async def setup_hook(self) -> None:
        await self.load_extension("botdata_cogs")

    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        # Unknown commands are normal here: a snippet's short form is one (botdata_cogs.snippets).
        if not isinstance(error, commands.CommandNotFound):
            await super().on_command_error(ctx, error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--offline", action="store_true", help="run the scripted offline tour")
    args = parser.parse_args(argv)
    if args.offline:
        return asyncio.run(offline_tour())
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        print(
            "Set DISCORD_TOKEN to your bot's token to connect to Discord, "
            "or run `python example_bot.py --offline` for the offline tour.",
            file=sys.stderr,
        )
        return 2
    DemoBot().run(token, log_level=logging.INFO)
    return 0


# The offline tour ------------------------------------------------------------------------------


async def offline_tour() -> int:
    """Run the scripted tour; print the transcript. Returns the exit status (0)."""
    with tempfile.TemporaryDirectory(prefix="botdata-demo-") as folder:
        os.environ["DATABASE_URL"] = f"sqlite://{Path(folder) / 'demo.sqlite3'}"
        os.environ.pop("REDIS_URL", None)
        os.chdir(folder)  # dpytest writes sent files to the working directory
        tour = Tour()
        await tour.start()
        try:
            await tour.run()
        finally:
            await tour.stop()
    return 0


class Tour:
    """The simulated guild, its people, and the script."""

    async def start(self) -> None:
        import discord.ext.test as dpytest
        from discord.ext.test import backend

        from botdata_cogs.testing import SimulatedDiscord

        self.dpytest = dpytest
        self.bot = DemoBot()
        await self.bot._async_setup_hook()
        dpytest.configure(
            self.bot,
            text_channels=["general", "mod-log", "starboard"],
            members=["Morgan", "Alex", "Sam"],
        )
        config = dpytest.get_config()
        self.guild = config.guilds[0]
        self.general, self.mod_log, self.starboard = config.channels[:3]
        self.mod, self.alex, self.sam = config.members
        SimulatedDiscord(self.guild).install(self.bot)
        await self.bot.setup_hook()  # loads the cogs; they connect botdata from the settings
        self.bot._ready.set()  # dpytest never sends READY; the reminder dispatcher waits for it
        self.db = handle(self.bot)
        top = backend.make_role("Bot", self.guild, permissions=discord.Permissions.all().value)
        mods = backend.make_role("Moderators", self.guild, permissions=0)
        top.position, mods.position = 20, 10
        await dpytest.add_role(self.guild.me, top)
        await dpytest.add_role(self.mod, mods)
        self.guild.owner_id = self.mod.id  # Morgan owns the server: permission level 7
        self.prefix = self.db.settings.DEFAULT_PREFIX

    async def stop(self) -> None:
        await self.bot.unload_extension("botdata_cogs")  # closes the botdata handle the cogs opened
        await self.dpytest.empty_queue()

    async def run(self) -> None:
        p, mod, alex, sam = self.prefix, self.mod, self.alex, self.sam
        heading("Setting up")
        await self.say(mod, f"{p}config log mod {self.mod_log.mention}")
        await self.say(mod, f"{p}starboard setup {self.starboard.mention} \u2b50 1")
        await self.say(mod, f"{p}levels settings cooldown 0")  # every message earns XP
        await self.say(mod, f"{p}levels settings xp 25-30")  # level 1 within four messages
        heading("Moderation")
        await self.say(mod, f"{p}warn {sam.mention} spamming links")
        await self.say(mod, f"{p}tempban {alex.mention} 1d raid")
        await self.say(mod, f"{p}cases {alex.id}")  # banned: no longer a member to mention
        await self.say(mod, f"{p}cases {sam.mention}")
        heading("Snippets")
        await self.say(sam, f"{p}snippet create rules Be kind. No spam.")
        await self.say(sam, f"{p}rules")
        await self.say(sam, f"{p}snippet info rules")
        heading("Levels")
        for text in ("hello!", "how is everyone?", "anyone up for a game?", "gg", "see you"):
            await self.say(sam, text)
        await self.say(sam, f"{p}rank")
        heading("AFK")
        await self.say(mod, f"{p}afk lunch")
        await self.say(sam, f"{mod.mention} are you there?")
        await self.say(mod, "back!")
        heading("Reminders")
        await self.say(sam, f"{p}remind 1s stretch your legs")
        await self.wait_for_bot(seconds=5)
        heading("Starboard")
        message = await self.dpytest.message("look at this cat", channel=self.general, member=sam)
        print(f"{sam.name}: look at this cat")
        from botdata_cogs.testing import react

        await react(mod, message, "\u2b50")
        print(f"  ({mod.name} reacts \u2b50)")
        self.show(await self.drain())

    async def say(self, member: discord.Member, content: str) -> None:
        """``member`` types ``content`` in #general; print it and what the bot said."""
        print(f"{member.name}: {content}")
        # dpytest re-raises command errors; the bot has already replied to them.
        with contextlib.suppress(commands.CommandError):
            await self.dpytest.message(content, channel=self.general, member=member)
        self.show(await self.drain())

    async def drain(self) -> list[discord.Message]:
        sent = []
        while not self.dpytest.sent_queue.empty():
            sent.append(await self.dpytest.sent_queue.get())
        return sent

    async def wait_for_bot(self, seconds: float) -> None:
        """Wait until the bot says something on its own (or ``seconds`` pass); print it."""
        for _ in range(int(seconds * 20)):
            await asyncio.sleep(0.05)
            if not self.dpytest.sent_queue.empty():
                break
        self.show(await self.drain())

    def show(self, messages: list[discord.Message]) -> None:
        for message in messages:
            where = (
                "DM" if isinstance(message.channel, discord.DMChannel) else f"#{message.channel}"
            )
            print(f"  bot [{where}]: {render(message)}")


def render(message: discord.Message) -> str:
    """A message as one or a few lines of text: its content, then its embeds' text."""
    parts = [message.content] if message.content else []
    for embed in message.embeds:
        text = " | ".join(
            filter(
                None,
                [embed.title, embed.description] + [f"{f.name}: {f.value}" for f in embed.fields],
            )
        )
        parts.append(f"[embed] {text}")
    return "\n    ".join(parts).replace("\n", "\n    ")


def heading(title: str) -> None:
    print(f"\n== {title} ==")


if __name__ == "__main__":
    raise SystemExit(main())
