"""The web dashboard: users, login sessions and the guilds they may manage: ``db.web``.

Sessions
    :meth:`WebManager.create_session` hands out a random token of 256 bits
    (``secrets.token_urlsafe(32)``) and stores only its SHA-256 (hex), so a leaked table does not
    leak usable tokens. :meth:`WebManager.validate` looks the hash up and accepts the session
    while it is neither expired nor revoked and its user is active.

    Expiry slides: a session lives ``WEB_SESSION_TTL`` seconds from its last use. To avoid a write
    on every request, ``validate`` extends ``expires_at`` (to now + TTL) only once less than
    ``TTL - min(300 s, TTL / 2)`` remains, i.e. at most about once per 5 minutes of activity. The
    extension is a conditional ``UPDATE`` (still unrevoked and unexpired), so it never revives a
    session revoked or expired meanwhile.

    Validated sessions are not cached: a cached session could outlive its revocation in another
    process whenever the cache cannot be told (Redis down), and the lookup is one indexed query.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from datetime import datetime, timedelta

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from botdata.errors import (
    InvalidAvatarError,
    InvalidEmailError,
    InvalidFlagError,
    InvalidIPAddressError,
    InvalidPermissionLevelError,
    InvalidSessionTokenError,
    InvalidTimestampError,
    InvalidUsernameError,
    WebUserInactiveError,
    WebUserNotFoundError,
)
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, aware, checked, excerpt, text, unstorable
from botdata.managers.guilds import insert_guild_rows
from botdata.managers.sql import fetch
from botdata.models import WebGuildPermission, WebSession, WebUser
from botdata.models.guild import PERMISSION_LEVELS
from botdata.schemas import WebGuildPermissionSchema, WebUserSchema

#: Random bytes in a session token (256 bits).
TOKEN_BYTES = 32
#: Longest time a session's expiry may lag behind "last use + TTL" (see the module docstring).
REFRESH_SLACK = timedelta(minutes=5)

_USERNAME_LENGTH = 100
_AVATAR_LENGTH = 200
_EMAIL_LENGTH = 255
#: The ip_address column's width: the longest IPv6 text form (with an embedded IPv4 address).
_IP_LENGTH = 45
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def hash_token(token: str) -> str:
    """The SHA-256 (64 hex characters) of a session token: what the database keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


class WebManager(Manager):
    """Dashboard users, sessions and per-guild permission levels. Reached as ``db.web``."""

    # Users -------------------------------------------------------------------------------------

    @checked
    async def upsert_user(
        self, id: Snowflake, username: str, avatar: str | None = None, email: str | None = None
    ) -> WebUserSchema:
        """Create or update a dashboard user from their Discord OAuth profile, on login.

        Sets ``last_login_at`` to now; leaves ``active`` as it was (a new user is active).
        One atomic upsert. Returns the user. Raises
        :class:`~botdata.errors.InvalidSnowflakeError`,
        :class:`~botdata.errors.InvalidUsernameError`, :class:`~botdata.errors.InvalidAvatarError`,
        :class:`~botdata.errors.InvalidEmailError` or
        :class:`~botdata.errors.UnstorableTextError` (text with a NUL or a surrogate) for bad
        input; nothing is written then.
        """
        text(username, "username")
        text(avatar, "avatar")
        text(email, "email")
        if not (
            isinstance(username, str)
            and 1 <= len(username) <= _USERNAME_LENGTH
            and username.strip()
        ):
            raise InvalidUsernameError(
                f"username must be 1-{_USERNAME_LENGTH} characters, not {excerpt(username)}"
            )
        if avatar is not None and not (
            isinstance(avatar, str) and 1 <= len(avatar) <= _AVATAR_LENGTH
        ):
            raise InvalidAvatarError(f"avatar must be 1-{_AVATAR_LENGTH} characters or None")
        if email is not None and not (
            isinstance(email, str) and len(email) <= _EMAIL_LENGTH and _EMAIL.fullmatch(email)
        ):
            raise InvalidEmailError(f"{excerpt(email)} is not an email address")
        now = self.db.clock.now()
        row = WebUser(id=id, username=username, avatar=avatar, email=email, last_login_at=now)
        async with in_transaction() as conn:
            await WebUser.bulk_create(
                [row],
                on_conflict=["id"],
                update_fields=["username", "avatar", "email", "last_login_at", "updated_at"],
                using_db=conn,
            )
            saved = await WebUser.get(id=id, using_db=conn)
        return WebUserSchema.model_validate(saved)

    @checked
    async def get_user(self, user_id: Snowflake) -> WebUserSchema | None:
        """The dashboard user with that Discord id, or None.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        row = await WebUser.get_or_none(id=user_id)
        return None if row is None else WebUserSchema.model_validate(row)

    @checked
    async def set_active(self, user_id: Snowflake, active: bool) -> WebUserSchema:
        """Activate or deactivate a dashboard user. A deactivated user's sessions stop
        validating at once (they are kept, and work again on reactivation unless expired).

        Returns the user. Raises :class:`~botdata.errors.InvalidSnowflakeError`,
        :class:`~botdata.errors.InvalidFlagError` for a non-bool ``active`` and
        :class:`~botdata.errors.WebUserNotFoundError` for an unknown user.
        """
        if not isinstance(active, bool):
            raise InvalidFlagError(f"active must be a bool, not {excerpt(active)}")
        async with in_transaction() as conn:
            updated = (
                await WebUser.filter(id=user_id)
                .using_db(conn)
                .update(active=active, updated_at=self.db.clock.now())
            )
            row = await WebUser.get_or_none(id=user_id, using_db=conn)
        if not updated or row is None:
            raise WebUserNotFoundError(f"no dashboard user {user_id}")
        return WebUserSchema.model_validate(row)

    # Sessions ----------------------------------------------------------------------------------

    @checked
    async def create_session(self, user_id: Snowflake, *, ip_address: str | None = None) -> str:
        """Open a session for an active user; it expires ``WEB_SESSION_TTL`` seconds after its
        last use.

        Returns the token (give it to the browser; it is not stored and cannot be recovered).
        Raises :class:`~botdata.errors.InvalidSnowflakeError`,
        :class:`~botdata.errors.InvalidIPAddressError` for an ``ip_address`` that is not an IPv4
        or IPv6 address of at most 45 characters, :class:`~botdata.errors.UnstorableTextError`
        for one with a NUL or a surrogate, :class:`~botdata.errors.WebUserNotFoundError` for an
        unknown user and :class:`~botdata.errors.WebUserInactiveError` for a deactivated one.
        """
        if ip_address is not None:
            ip_address = _check_ip(ip_address)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.db.clock.now()
        # One statement: the session is written only if the user exists and is active.
        created = await fetch(
            get_connection("default"),
            self.db.dialect,
            "INSERT INTO web_sessions "
            "(user_id, token_hash, expires_at, ip_address, created_at, updated_at) "
            "SELECT id, $2, $3, $4, $5, $5 FROM web_users WHERE id = $1 AND active RETURNING id",
            [user_id, hash_token(token), now + self._ttl, ip_address, now],
        )
        if not created:
            if await WebUser.filter(id=user_id).exists():
                raise WebUserInactiveError(f"dashboard user {user_id} is deactivated")
            raise WebUserNotFoundError(f"no dashboard user {user_id}")
        return token

    async def validate(self, token: str) -> WebUserSchema | None:
        """The user of the session ``token``, or None when the token is unknown (also when it
        is not storable text: no token is), expired or revoked, or its user is deactivated.
        Slides the expiry (see the module docstring).

        Raises :class:`~botdata.errors.InvalidSessionTokenError` when ``token`` is not a str.
        """
        digest = _digest(token)
        if digest is None:
            return None
        now = self.db.clock.now()
        session = (
            await WebSession.filter(
                token_hash=digest, revoked_at=None, expires_at__gt=now, user__active=True
            )
            .select_related("user")
            .first()
        )
        if session is None:
            return None
        if session.expires_at - now < self._ttl - min(REFRESH_SLACK, self._ttl / 2):
            extended = await WebSession.filter(
                id=session.id, revoked_at=None, expires_at__gt=now
            ).update(expires_at=now + self._ttl, updated_at=now)
            if not extended:  # revoked or expired since the lookup
                return None
        return WebUserSchema.model_validate(session.user)

    async def revoke(self, token: str) -> bool:
        """End the session ``token`` now (it stays recorded until :meth:`sweep_expired`).

        Returns whether a live session was revoked (False for an unknown token). Raises
        :class:`~botdata.errors.InvalidSessionTokenError` when ``token`` is not a str.
        """
        digest = _digest(token)
        if digest is None:
            return False
        now = self.db.clock.now()
        revoked = await WebSession.filter(token_hash=digest, revoked_at=None).update(
            revoked_at=now, updated_at=now
        )
        return revoked > 0

    @checked
    async def revoke_all(self, user_id: Snowflake) -> int:
        """End every session of the user (log out everywhere).

        Returns how many sessions were revoked. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        now = self.db.clock.now()
        return await WebSession.filter(user_id=user_id, revoked_at=None).update(
            revoked_at=now, updated_at=now
        )

    async def sweep_expired(self, now: datetime | None = None) -> int:
        """Delete the sessions that are expired or revoked as of ``now`` (default: now).

        Returns how many were deleted. Raises :class:`~botdata.errors.InvalidTimestampError`
        when ``now`` is not a timezone-aware datetime (within the years 1-9999 in UTC).
        """
        now = self.db.clock.now() if now is None else aware(now, "now", InvalidTimestampError)
        return await WebSession.filter(Q(expires_at__lte=now) | Q(revoked_at__lte=now)).delete()

    # Guild permissions -------------------------------------------------------------------------

    @checked
    async def grant_guild(
        self, user_id: Snowflake, guild_id: Snowflake, level: int
    ) -> WebGuildPermissionSchema:
        """Let the user manage the guild at permission ``level`` (0-7), replacing any level they
        had there (an atomic upsert); creates the guild row if needed.

        Returns the permission. Raises :class:`~botdata.errors.InvalidSnowflakeError`,
        :class:`~botdata.errors.InvalidPermissionLevelError` for a level that is not an int
        from 0 to 7 and :class:`~botdata.errors.WebUserNotFoundError` for an unknown user.
        Nothing is written when it raises.
        """
        if isinstance(level, bool) or not isinstance(level, int) or level not in PERMISSION_LEVELS:
            raise InvalidPermissionLevelError(
                f"level must be an int from 0 to 7, not {excerpt(level)}"
            )
        row = WebGuildPermission(user_id=user_id, guild_id=guild_id, level=level)
        try:
            async with in_transaction() as conn:
                await insert_guild_rows(guild_id, conn)  # a write first: SQLite locks at once
                if not await WebUser.filter(id=user_id).using_db(conn).exists():
                    raise WebUserNotFoundError(f"no dashboard user {user_id}")
                await WebGuildPermission.bulk_create(
                    [row],
                    on_conflict=["user_id", "guild_id"],
                    update_fields=["level", "updated_at"],
                    using_db=conn,
                )
                saved = await WebGuildPermission.get(
                    user_id=user_id, guild_id=guild_id, using_db=conn
                )
        except IntegrityError:  # the user was deleted meanwhile (foreign key)
            raise WebUserNotFoundError(f"no dashboard user {user_id}") from None
        return WebGuildPermissionSchema.model_validate(saved)

    @checked
    async def revoke_guild(self, user_id: Snowflake, guild_id: Snowflake) -> bool:
        """Take away the user's permission to manage the guild.

        Returns whether they had one. Raises :class:`~botdata.errors.InvalidSnowflakeError`.
        """
        return await WebGuildPermission.filter(user_id=user_id, guild_id=guild_id).delete() > 0

    @checked
    async def guilds_of(self, user_id: Snowflake) -> list[WebGuildPermissionSchema]:
        """The guilds the user may manage, with their level, ordered by guild id.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        rows = await WebGuildPermission.filter(user_id=user_id).order_by("guild_id")
        return [WebGuildPermissionSchema.model_validate(row) for row in rows]

    @checked
    async def level_in(self, user_id: Snowflake, guild_id: Snowflake) -> int | None:
        """The user's permission level in the guild, or None when they may not manage it.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        # One row at most: (user, guild) is unique.
        row = await WebGuildPermission.get_or_none(user_id=user_id, guild_id=guild_id)
        return None if row is None else row.level

    @property
    def _ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.WEB_SESSION_TTL)


def _digest(token: object) -> str | None:
    """The stored hash of ``token``; None when it is not storable text (so no session's)."""
    if not isinstance(token, str):
        raise InvalidSessionTokenError(f"a session token is a str, not {type(token).__name__}")
    if unstorable(token):
        return None
    return hash_token(token)


def _check_ip(value: object) -> str:
    """``value`` in its canonical text form; raises InvalidIPAddressError and
    UnstorableTextError (an IPv6 zone may hold any text)."""
    text(value, "ip_address")
    try:
        address = str(ipaddress.ip_address(value)) if isinstance(value, str) else ""
    except ValueError:
        address = ""
    if not 1 <= len(address) <= _IP_LENGTH:
        raise InvalidIPAddressError(f"{excerpt(value)} is not an IP address")
    return address
