"""db.web: dashboard users, hashed sliding sessions and guild permissions (both backends)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from tortoise import Tortoise

import botdata
from botdata.errors import (
    InvalidAvatarError,
    InvalidEmailError,
    InvalidFlagError,
    InvalidIPAddressError,
    InvalidPermissionLevelError,
    InvalidSessionTokenError,
    InvalidSnowflakeError,
    InvalidTimestampError,
    InvalidUsernameError,
    WebUserInactiveError,
    WebUserNotFoundError,
)
from botdata.models import Guild, WebGuildPermission, WebSession, WebUser

USER = 1 << 44
OTHER_USER = (1 << 44) + 1
GUILD = 1 << 40
OTHER_GUILD = (1 << 40) + 1


async def counts() -> tuple[int, int, int, int]:
    return (
        await WebUser.all().count(),
        await WebSession.all().count(),
        await WebGuildPermission.all().count(),
        await Guild.all().count(),
    )


def ttl(db: botdata.Database) -> timedelta:
    return timedelta(seconds=db.settings.WEB_SESSION_TTL)


# Users -------------------------------------------------------------------------------------------


async def test_upsert_user_creates_then_updates_on_login(botdata_db: botdata.Database) -> None:
    before = datetime.now(timezone.utc)
    user = await botdata_db.web.upsert_user(
        USER, "alice", avatar="a1b2c3", email="alice@example.org"
    )
    assert (user.id, user.username, user.avatar, user.email, user.active) == (
        USER,
        "alice",
        "a1b2c3",
        "alice@example.org",
        True,
    )
    assert user.last_login_at is not None
    assert user.last_login_at >= before
    created_at = (await WebUser.get(id=USER)).created_at

    again = await botdata_db.web.upsert_user(USER, "alice2")
    assert (again.username, again.avatar, again.email) == ("alice2", None, None)
    assert again.last_login_at > user.last_login_at
    assert (await WebUser.get(id=USER)).created_at == created_at
    assert await botdata_db.web.get_user(USER) == again
    assert await botdata_db.web.get_user(OTHER_USER) is None
    assert await WebUser.all().count() == 1


async def test_login_does_not_reactivate_a_deactivated_user(botdata_db: botdata.Database) -> None:
    await botdata_db.web.upsert_user(USER, "alice")
    off = await botdata_db.web.set_active(USER, False)
    assert off.active is False
    assert (await botdata_db.web.upsert_user(USER, "alice")).active is False
    assert (await botdata_db.web.set_active(USER, True)).active is True


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"id": 12}, InvalidSnowflakeError),
        ({"id": "1"}, InvalidSnowflakeError),
        ({"username": ""}, InvalidUsernameError),
        ({"username": "   "}, InvalidUsernameError),
        ({"username": "x" * 101}, InvalidUsernameError),
        ({"username": None}, InvalidUsernameError),
        ({"avatar": ""}, InvalidAvatarError),
        ({"avatar": "x" * 201}, InvalidAvatarError),
        ({"avatar": 3}, InvalidAvatarError),
        ({"email": "nope"}, InvalidEmailError),
        ({"email": "a@b"}, InvalidEmailError),
        ({"email": "a b@c.de"}, InvalidEmailError),
        ({"email": "a@@c.de"}, InvalidEmailError),
        ({"email": "a@c..de"}, InvalidEmailError),
        ({"email": "x" * 250 + "@c.org"}, InvalidEmailError),
        ({"email": 5}, InvalidEmailError),
    ],
)
async def test_upsert_user_rejects_bad_input_and_writes_nothing(
    botdata_db: botdata.Database, arguments: dict[str, Any], error: type[Exception]
) -> None:
    await botdata_db.web.upsert_user(OTHER_USER, "bob")
    call: dict[str, Any] = {"id": USER, "username": "alice", **arguments}
    with pytest.raises(error):
        await botdata_db.web.upsert_user(**call)
    assert await WebUser.filter(id=USER).count() == 0
    assert (await botdata_db.web.get_user(OTHER_USER)).username == "bob"


async def test_set_active_errors(botdata_db: botdata.Database) -> None:
    with pytest.raises(WebUserNotFoundError):
        await botdata_db.web.set_active(USER, False)
    await botdata_db.web.upsert_user(USER, "alice")
    with pytest.raises(InvalidFlagError):
        await botdata_db.web.set_active(USER, 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.web.get_user(1)
    assert (await botdata_db.web.get_user(USER)).active is True


# Sessions ----------------------------------------------------------------------------------------


async def test_tokens_are_random_and_never_stored_in_clear(botdata_db: botdata.Database) -> None:
    await botdata_db.web.upsert_user(USER, "alice")
    tokens = [await botdata_db.web.create_session(USER, ip_address="203.0.113.9") for _ in range(5)]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert len(token) >= 43  # 32 random bytes, base64url
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    conn = Tortoise.get_connection("default")
    rows = await conn.execute_query_dict("SELECT * FROM web_sessions")
    assert len(rows) == 5
    stored_hashes = {row["token_hash"] for row in rows}
    assert stored_hashes == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}
    for row in rows:
        assert row["ip_address"] == "203.0.113.9"
        for value in row.values():
            for token in tokens:
                assert token not in str(value)
    for token in tokens:
        assert (await botdata_db.web.validate(token)).id == USER


async def test_create_session_errors_write_nothing(botdata_db: botdata.Database) -> None:
    with pytest.raises(WebUserNotFoundError):
        await botdata_db.web.create_session(USER)
    await botdata_db.web.upsert_user(USER, "alice")
    for bad in ("999.1.1.1", "localhost", "", 12):
        with pytest.raises(InvalidIPAddressError):
            await botdata_db.web.create_session(USER, ip_address=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.web.create_session(0)
    await botdata_db.web.set_active(USER, False)
    with pytest.raises(WebUserInactiveError):
        await botdata_db.web.create_session(USER)
    assert await WebSession.all().count() == 0


async def test_ip_addresses_are_stored_canonically(botdata_db: botdata.Database) -> None:
    await botdata_db.web.upsert_user(USER, "alice")
    await botdata_db.web.create_session(USER, ip_address="2001:DB8:0:0::1")
    assert (await WebSession.get()).ip_address == "2001:db8::1"


async def test_expired_revoked_unknown_and_inactive_do_not_validate(
    botdata_db: botdata.Database,
) -> None:
    await botdata_db.web.upsert_user(USER, "alice")
    await botdata_db.web.upsert_user(OTHER_USER, "bob")
    expired = await botdata_db.web.create_session(USER)
    revoked = await botdata_db.web.create_session(USER)
    live = await botdata_db.web.create_session(USER)
    other = await botdata_db.web.create_session(OTHER_USER)
    await WebSession.filter(token_hash=hashlib.sha256(expired.encode()).hexdigest()).update(
        expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)
    )
    assert await botdata_db.web.revoke(revoked) is True
    assert await botdata_db.web.revoke(revoked) is False

    assert await botdata_db.web.validate(expired) is None
    assert await botdata_db.web.validate(revoked) is None
    assert await botdata_db.web.validate("not-a-token") is None
    assert await botdata_db.web.validate("") is None
    with pytest.raises(InvalidSessionTokenError):
        await botdata_db.web.validate(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidSessionTokenError):
        await botdata_db.web.revoke(b"bytes")  # type: ignore[arg-type]
    assert (await botdata_db.web.validate(live)).id == USER
    assert (await botdata_db.web.validate(other)).id == OTHER_USER

    await botdata_db.web.set_active(USER, False)
    assert await botdata_db.web.validate(live) is None
    assert (await botdata_db.web.validate(other)).id == OTHER_USER
    await botdata_db.web.set_active(USER, True)
    assert (await botdata_db.web.validate(live)).username == "alice"


async def test_sliding_expiry_extends_only_when_needed(botdata_db: botdata.Database) -> None:
    await botdata_db.web.upsert_user(USER, "alice")
    token = await botdata_db.web.create_session(USER)
    digest = hashlib.sha256(token.encode()).hexdigest()
    fresh = await WebSession.get(token_hash=digest)
    # a fresh session is not rewritten on every request
    assert await botdata_db.web.validate(token) is not None
    assert (await WebSession.get(token_hash=digest)).expires_at == fresh.expires_at

    soon = datetime.now(timezone.utc) + timedelta(seconds=30)
    await WebSession.filter(token_hash=digest).update(expires_at=soon)
    before = datetime.now(timezone.utc)
    assert (await botdata_db.web.validate(token)).id == USER
    extended = (await WebSession.get(token_hash=digest)).expires_at
    assert before + ttl(botdata_db) <= extended <= datetime.now(timezone.utc) + ttl(botdata_db)


async def test_revoke_all_and_sweep(botdata_db: botdata.Database) -> None:
    await botdata_db.web.upsert_user(USER, "alice")
    await botdata_db.web.upsert_user(OTHER_USER, "bob")
    mine = [await botdata_db.web.create_session(USER) for _ in range(3)]
    theirs = await botdata_db.web.create_session(OTHER_USER)
    old = await botdata_db.web.create_session(OTHER_USER)
    await WebSession.filter(token_hash=hashlib.sha256(old.encode()).hexdigest()).update(
        expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)
    )
    assert await botdata_db.web.revoke_all(USER) == 3
    assert await botdata_db.web.revoke_all(USER) == 0
    assert all([await botdata_db.web.validate(t) is None for t in mine])
    assert (await botdata_db.web.validate(theirs)).id == OTHER_USER

    # the three revoked and the expired one go; the live one stays
    assert await botdata_db.web.sweep_expired() == 4
    assert await WebSession.all().count() == 1
    assert (await botdata_db.web.validate(theirs)).id == OTHER_USER
    # as of a time after its expiry, the last one goes too
    assert await botdata_db.web.sweep_expired(datetime.now(timezone.utc) + 2 * ttl(botdata_db)) == 1
    with pytest.raises(InvalidTimestampError):
        await botdata_db.web.sweep_expired(datetime.now())
    with pytest.raises(InvalidTimestampError):
        await botdata_db.web.sweep_expired("2020-01-01")  # type: ignore[arg-type]
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.web.revoke_all(3)


# Guild permissions -------------------------------------------------------------------------------


async def test_guild_permissions(botdata_db: botdata.Database) -> None:
    await botdata_db.web.upsert_user(USER, "alice")
    await botdata_db.web.upsert_user(OTHER_USER, "bob")
    granted = await botdata_db.web.grant_guild(USER, OTHER_GUILD, 3)
    assert (granted.user_id, granted.guild_id, granted.level) == (USER, OTHER_GUILD, 3)
    assert await Guild.filter(id=OTHER_GUILD).exists()  # created for the permission
    await botdata_db.web.grant_guild(USER, GUILD, 7)
    await botdata_db.web.grant_guild(OTHER_USER, GUILD, 0)
    assert (await botdata_db.web.grant_guild(USER, OTHER_GUILD, 5)).level == 5  # upsert
    assert await WebGuildPermission.filter(user_id=USER).count() == 2

    assert [(p.guild_id, p.level) for p in await botdata_db.web.guilds_of(USER)] == [
        (GUILD, 7),
        (OTHER_GUILD, 5),
    ]
    assert await botdata_db.web.level_in(USER, OTHER_GUILD) == 5
    assert await botdata_db.web.level_in(OTHER_USER, GUILD) == 0
    assert await botdata_db.web.level_in(OTHER_USER, OTHER_GUILD) is None

    assert await botdata_db.web.revoke_guild(USER, GUILD) is True
    assert await botdata_db.web.revoke_guild(USER, GUILD) is False
    assert await botdata_db.web.level_in(USER, GUILD) is None
    assert await botdata_db.web.level_in(OTHER_USER, GUILD) == 0
    assert [p.guild_id for p in await botdata_db.web.guilds_of(USER)] == [OTHER_GUILD]
    assert await botdata_db.web.guilds_of(1 << 50) == []


@pytest.mark.parametrize("level", [-1, 8, True, "3", 2.0, None])
async def test_grant_guild_rejects_bad_levels_and_writes_nothing(
    botdata_db: botdata.Database, level: Any
) -> None:
    await botdata_db.web.upsert_user(USER, "alice")
    with pytest.raises(InvalidPermissionLevelError):
        await botdata_db.web.grant_guild(USER, GUILD, level)
    assert await counts() == (1, 0, 0, 0)


async def test_grant_guild_to_an_unknown_user_writes_nothing(botdata_db: botdata.Database) -> None:
    with pytest.raises(WebUserNotFoundError):
        await botdata_db.web.grant_guild(USER, GUILD, 1)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.web.grant_guild(USER, 7, 1)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.web.level_in(USER, None)  # type: ignore[arg-type]
    assert await counts() == (0, 0, 0, 0)
