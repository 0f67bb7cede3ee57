"""db.starboard: settings, atomic star counting, copy decisions (both backends)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import botdata
from botdata.errors import (
    InvalidFlagError,
    InvalidSnowflakeError,
    InvalidStarboardEmojiError,
    InvalidStarThresholdError,
    StarboardCopyConflictError,
    StarboardMessageNotFoundError,
    StarboardNotConfiguredError,
)
from botdata.models import Guild, Starboard, StarboardMessage, StarboardStar
from botdata.schemas import StarAction
from tests.support import run_processes

GUILD = 1 << 40
OTHER_GUILD = (1 << 40) + 1
CHANNEL = 1 << 41
STARBOARD_CHANNEL = (1 << 41) + 1
MESSAGE = 1 << 42
OTHER_MESSAGE = (1 << 42) + 1
COPY = 1 << 43
AUTHOR = 1 << 44
USERS = [(1 << 45) + n for n in range(40)]


async def setup(db: botdata.Database, **settings: Any) -> None:
    await db.starboard.configure(GUILD, channel_id=STARBOARD_CHANNEL, **settings)


async def star(db: botdata.Database, user: int, message: int = MESSAGE):
    return await db.starboard.add_star(
        GUILD, message_id=message, channel_id=CHANNEL, author_id=AUTHOR, user_id=user
    )


async def unstar(db: botdata.Database, user: int, message: int = MESSAGE):
    return await db.starboard.remove_star(
        GUILD, message_id=message, channel_id=CHANNEL, user_id=user
    )


async def counts() -> tuple[int, int, int, int]:
    return (
        await Guild.all().count(),
        await Starboard.all().count(),
        await StarboardMessage.all().count(),
        await StarboardStar.all().count(),
    )


# Settings ----------------------------------------------------------------------------------------


async def test_configure_creates_the_guild_and_upserts(botdata_db: botdata.Database) -> None:
    assert await botdata_db.starboard.get(GUILD) is None
    board = await botdata_db.starboard.configure(GUILD, channel_id=STARBOARD_CHANNEL)
    assert (board.guild_id, board.channel_id, board.emoji, board.threshold) == (
        GUILD,
        STARBOARD_CHANNEL,
        "\u2b50",
        3,
    )
    assert board.allow_self_star is False
    assert await Guild.filter(id=GUILD).exists()
    assert await botdata_db.starboard.get(GUILD) == board

    again = await botdata_db.starboard.configure(
        GUILD,
        channel_id=CHANNEL,
        emoji="<:star:123456789012345678>",
        threshold=5,
        allow_self_star=True,
    )
    assert (again.channel_id, again.emoji, again.threshold, again.allow_self_star) == (
        CHANNEL,
        "<:star:123456789012345678>",
        5,
        True,
    )
    # the cached settings were replaced, and there is still one row
    assert await botdata_db.starboard.get(GUILD) == again
    assert await Starboard.all().count() == 1


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"guild_id": 5}, InvalidSnowflakeError),
        ({"channel_id": "1"}, InvalidSnowflakeError),
        ({"channel_id": None}, InvalidSnowflakeError),
        ({"emoji": ""}, InvalidStarboardEmojiError),
        ({"emoji": "a b"}, InvalidStarboardEmojiError),
        ({"emoji": "x" * 65}, InvalidStarboardEmojiError),
        ({"emoji": 7}, InvalidStarboardEmojiError),
        ({"threshold": 0}, InvalidStarThresholdError),
        ({"threshold": -3}, InvalidStarThresholdError),
        ({"threshold": True}, InvalidStarThresholdError),
        ({"threshold": 2.0}, InvalidStarThresholdError),
        ({"threshold": 2**31}, InvalidStarThresholdError),
        ({"allow_self_star": 1}, InvalidFlagError),
    ],
)
async def test_configure_rejects_bad_input_and_writes_nothing(
    botdata_db: botdata.Database, changes: dict[str, Any], error: type[Exception]
) -> None:
    arguments: dict[str, Any] = {"guild_id": GUILD, "channel_id": STARBOARD_CHANNEL, **changes}
    guild_id = arguments.pop("guild_id")
    with pytest.raises(error):
        await botdata_db.starboard.configure(guild_id, **arguments)
    assert await counts() == (0, 0, 0, 0)


async def test_remove_deletes_settings_entries_and_stars(botdata_db: botdata.Database) -> None:
    await setup(botdata_db, threshold=1)
    await star(botdata_db, USERS[0])
    await botdata_db.starboard.configure(OTHER_GUILD, channel_id=STARBOARD_CHANNEL)
    await botdata_db.starboard.add_star(
        OTHER_GUILD, message_id=MESSAGE, channel_id=CHANNEL, author_id=AUTHOR, user_id=USERS[0]
    )

    assert await botdata_db.starboard.remove(GUILD) is True
    assert await botdata_db.starboard.get(GUILD) is None
    assert await botdata_db.starboard.get_message(GUILD, MESSAGE) is None
    assert await StarboardStar.filter(message__guild_id=GUILD).count() == 0
    # the other guild is untouched
    assert await botdata_db.starboard.get(OTHER_GUILD) is not None
    assert (await botdata_db.starboard.get_message(OTHER_GUILD, MESSAGE)).stars == 1
    assert await botdata_db.starboard.remove(GUILD) is False
    with pytest.raises(StarboardNotConfiguredError):
        await star(botdata_db, USERS[1])


async def test_bad_ids_raise_and_write_nothing(botdata_db: botdata.Database) -> None:
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.starboard.get(0)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.starboard.remove(-1)
    await setup(botdata_db)
    before = await counts()
    for field in ("message_id", "channel_id", "author_id", "user_id"):
        arguments = {
            "message_id": MESSAGE,
            "channel_id": CHANNEL,
            "author_id": AUTHOR,
            "user_id": USERS[0],
            field: 12,
        }
        with pytest.raises(InvalidSnowflakeError):
            await botdata_db.starboard.add_star(GUILD, **arguments)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.starboard.remove_star(
            GUILD, message_id=MESSAGE, channel_id=CHANNEL, user_id=True
        )
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.starboard.get_message(GUILD, "x")
    assert await counts() == before


async def test_a_deleted_guild_with_cached_settings_is_not_configured(
    botdata_db: botdata.Database,
) -> None:
    await setup(botdata_db)
    assert await botdata_db.starboard.get(GUILD) is not None  # cached
    await Guild.filter(id=GUILD).delete()  # cascades to the starboard, behind the cache's back
    with pytest.raises(StarboardNotConfiguredError):
        await star(botdata_db, USERS[0])
    assert await botdata_db.starboard.get(GUILD) is None
    assert await counts() == (0, 0, 0, 0)


async def test_starring_an_unconfigured_guild_raises(botdata_db: botdata.Database) -> None:
    with pytest.raises(StarboardNotConfiguredError):
        await star(botdata_db, USERS[0])
    with pytest.raises(StarboardNotConfiguredError):
        await unstar(botdata_db, USERS[0])
    assert await counts() == (0, 0, 0, 0)


# Counting and decisions --------------------------------------------------------------------------


async def test_post_update_remove_cycle(botdata_db: botdata.Database) -> None:
    await setup(botdata_db, threshold=3)
    first = await star(botdata_db, USERS[0])
    assert (first.action, first.stars, first.message_id, first.channel_id) == (
        StarAction.NOTHING,
        1,
        MESSAGE,
        CHANNEL,
    )
    assert (await star(botdata_db, USERS[1])).action is StarAction.NOTHING
    post = await star(botdata_db, USERS[2])
    assert (post.action, post.stars, post.starboard_message_id) == (StarAction.POST, 3, None)

    entry = await botdata_db.starboard.set_copy(GUILD, MESSAGE, COPY)
    assert (entry.starboard_message_id, entry.stars, entry.author_id) == (COPY, 3, AUTHOR)

    update = await star(botdata_db, USERS[3])
    assert (update.action, update.stars, update.starboard_message_id) == (
        StarAction.UPDATE,
        4,
        COPY,
    )
    down = await unstar(botdata_db, USERS[3])
    assert (down.action, down.stars, down.starboard_message_id) == (StarAction.UPDATE, 3, COPY)
    remove = await unstar(botdata_db, USERS[2])
    assert (remove.action, remove.stars, remove.starboard_message_id) == (
        StarAction.REMOVE,
        2,
        COPY,
    )
    # the copy's record is cleared with the REMOVE decision: nobody else is told to remove it
    assert (await botdata_db.starboard.get_message(GUILD, MESSAGE)).starboard_message_id is None
    assert (await unstar(botdata_db, USERS[1])).action is StarAction.NOTHING
    # reaching the threshold again posts again
    assert (await star(botdata_db, USERS[1])).action is StarAction.NOTHING
    again = await star(botdata_db, USERS[2])
    assert (again.action, again.stars) == (StarAction.POST, 3)


async def test_a_member_counts_once(botdata_db: botdata.Database) -> None:
    await setup(botdata_db, threshold=2)
    assert (await star(botdata_db, USERS[0])).stars == 1
    repeat = await star(botdata_db, USERS[0])
    assert (repeat.action, repeat.stars) == (StarAction.NOTHING, 1)
    assert await StarboardStar.all().count() == 1
    # removing a star that was never given changes nothing
    absent = await unstar(botdata_db, USERS[1])
    assert (absent.action, absent.stars) == (StarAction.NOTHING, 1)
    never = await unstar(botdata_db, USERS[1], message=OTHER_MESSAGE)
    assert (never.action, never.stars, never.message_id) == (
        StarAction.NOTHING,
        0,
        OTHER_MESSAGE,
    )
    assert (await unstar(botdata_db, USERS[0])).stars == 0
    assert (await unstar(botdata_db, USERS[0])).stars == 0
    assert (await botdata_db.starboard.get_message(GUILD, MESSAGE)).stars == 0


async def test_self_stars_are_ignored_unless_allowed(botdata_db: botdata.Database) -> None:
    await setup(botdata_db, threshold=1)
    ignored = await star(botdata_db, AUTHOR)
    assert (ignored.action, ignored.stars) == (StarAction.NOTHING, 0)
    assert await counts() == (1, 1, 0, 0)

    await setup(botdata_db, threshold=1, allow_self_star=True)
    counted = await star(botdata_db, AUTHOR)
    assert (counted.action, counted.stars) == (StarAction.POST, 1)
    # disallowing later still lets the author take their star back
    await setup(botdata_db, threshold=1, allow_self_star=False)
    assert (await unstar(botdata_db, AUTHOR)).stars == 0


async def test_stars_on_the_copy_count_for_the_original(botdata_db: botdata.Database) -> None:
    await setup(botdata_db, threshold=1)
    assert (await star(botdata_db, USERS[0])).action is StarAction.POST
    await botdata_db.starboard.set_copy(GUILD, MESSAGE, COPY)

    # the copy is the bot's message in the starboard channel
    bot = USERS[-1]
    on_copy = await botdata_db.starboard.add_star(
        GUILD, message_id=COPY, channel_id=STARBOARD_CHANNEL, author_id=bot, user_id=USERS[1]
    )
    assert (on_copy.action, on_copy.stars, on_copy.message_id, on_copy.channel_id) == (
        StarAction.UPDATE,
        2,
        MESSAGE,
        CHANNEL,
    )
    # starring both the original and the copy counts once
    twice = await botdata_db.starboard.add_star(
        GUILD, message_id=COPY, channel_id=STARBOARD_CHANNEL, author_id=bot, user_id=USERS[0]
    )
    assert (twice.action, twice.stars) == (StarAction.NOTHING, 2)
    # the original author starring the copy is a self-star
    selfish = await botdata_db.starboard.add_star(
        GUILD, message_id=COPY, channel_id=STARBOARD_CHANNEL, author_id=bot, user_id=AUTHOR
    )
    assert (selfish.action, selfish.stars) == (StarAction.NOTHING, 2)
    assert await StarboardMessage.all().count() == 1
    assert (await botdata_db.starboard.get_message(GUILD, COPY)).message_id == MESSAGE

    off_copy = await botdata_db.starboard.remove_star(
        GUILD, message_id=COPY, channel_id=STARBOARD_CHANNEL, user_id=USERS[1]
    )
    assert (off_copy.action, off_copy.stars) == (StarAction.UPDATE, 1)
    assert await StarboardStar.all().count() == 1


async def test_set_copy_errors_and_clearing(botdata_db: botdata.Database) -> None:
    await setup(botdata_db, threshold=1)
    with pytest.raises(StarboardMessageNotFoundError):
        await botdata_db.starboard.set_copy(GUILD, MESSAGE, COPY)
    await star(botdata_db, USERS[0])
    await star(botdata_db, USERS[0], message=OTHER_MESSAGE)
    await botdata_db.starboard.set_copy(GUILD, MESSAGE, COPY)
    with pytest.raises(StarboardCopyConflictError):
        await botdata_db.starboard.set_copy(GUILD, OTHER_MESSAGE, COPY)
    assert (
        await botdata_db.starboard.get_message(GUILD, OTHER_MESSAGE)
    ).starboard_message_id is None
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.starboard.set_copy(GUILD, OTHER_MESSAGE, 3)
    assert (
        await botdata_db.starboard.get_message(GUILD, OTHER_MESSAGE)
    ).starboard_message_id is None

    cleared = await botdata_db.starboard.set_copy(GUILD, MESSAGE, None)
    assert cleared.starboard_message_id is None
    assert (
        await botdata_db.starboard.set_copy(GUILD, OTHER_MESSAGE, COPY)
    ).starboard_message_id == COPY


# Concurrency -------------------------------------------------------------------------------------


async def test_concurrent_stars_count_exactly_and_post_once(botdata_db: botdata.Database) -> None:
    await setup(botdata_db, threshold=3)
    users = USERS[:30]
    decisions = await asyncio.gather(*(star(botdata_db, user) for user in users))
    assert (await botdata_db.starboard.get_message(GUILD, MESSAGE)).stars == 30
    assert await StarboardStar.all().count() == 30
    assert sorted(d.stars for d in decisions) == list(range(1, 31))
    assert [d.action for d in decisions].count(StarAction.POST) == 1

    # the same member many times at once counts once
    repeats = await asyncio.gather(*(star(botdata_db, USERS[35], OTHER_MESSAGE) for _ in range(10)))
    assert (await botdata_db.starboard.get_message(GUILD, OTHER_MESSAGE)).stars == 1
    assert sorted(d.stars for d in repeats) == [1] * 10

    # every star taken back at once: exactly one caller is told to remove the copy
    await botdata_db.starboard.set_copy(GUILD, MESSAGE, COPY)
    removals = await asyncio.gather(*(unstar(botdata_db, user) for user in users))
    actions = [d.action for d in removals]
    assert actions.count(StarAction.REMOVE) == 1
    assert actions.count(StarAction.UPDATE) == 27
    assert (await botdata_db.starboard.get_message(GUILD, MESSAGE)).stars == 0


async def test_stars_from_several_processes(
    botdata_db: botdata.Database, botdata_database_url: str, tmp_path: Path
) -> None:
    await setup(botdata_db, threshold=5)
    workers = 4
    # Each worker stars with 8 members of its own and one shared member, after a file barrier.
    code = f"""
        import asyncio, json, os, pathlib, time
        import botdata

        BARRIER = pathlib.Path({str(tmp_path)!r})
        WORKER = int(os.environ["WORKER"])
        USERS = [{USERS[0]} + WORKER * 8 + n for n in range(8)] + [{USERS[-1]}]

        async def main():
            db = await botdata.connect(database_url={botdata_database_url!r}, redis_url="")
            try:
                (BARRIER / ("ready-" + str(WORKER))).touch()
                deadline = time.monotonic() + 60
                while len(list(BARRIER.glob("ready-*"))) < {workers}:
                    assert time.monotonic() < deadline, "other workers did not start"
                    await asyncio.sleep(0.005)
                decisions = await asyncio.gather(*(
                    db.starboard.add_star(
                        {GUILD}, message_id={MESSAGE}, channel_id={CHANNEL},
                        author_id={AUTHOR}, user_id=user,
                    )
                    for user in USERS
                ))
                print(json.dumps([[d.action.value, d.stars] for d in decisions]))
            finally:
                await db.close()

        asyncio.run(main())
    """
    outputs = await asyncio.to_thread(run_processes, code, workers)
    decisions = [d for out in outputs for d in json.loads(out.strip().splitlines()[-1])]
    expected = workers * 8 + 1
    assert (await botdata_db.starboard.get_message(GUILD, MESSAGE)).stars == expected
    assert await StarboardStar.all().count() == expected
    assert [action for action, _ in decisions].count("post") == 1
    # each counted star saw its own count (the shared member's repeats report the current one)
    assert {stars for _, stars in decisions} == set(range(1, expected + 1))
