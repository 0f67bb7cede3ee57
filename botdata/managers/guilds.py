"""Guilds, their configuration and their dynamic settings: ``db.guilds``.

Configuration
    Every guild has one :class:`~botdata.models.GuildConfig` row (prefix, log channels, jail,
    the role of each permission level). :meth:`GuildManager.config` serves it from the cache: the
    in-process hot layer first, then the shared cache (Redis), then the database, for
    ``GUILD_CONFIG_TTL`` seconds. A guild without a row gets the defaults and nothing is written.
    :meth:`GuildManager.prefix` is the per-message read path: after the first call it is a
    dictionary lookup in the hot layer.

Dynamic settings
    Modules (cogs) keep their own per-guild values as JSON under ``(module, key)``. A module may
    register a pydantic model for a key with :meth:`GuildManager.register_settings`: values of
    that key are then validated against the model before they are written, stored as the model's
    JSON, and read back as model instances. Keys without a model take any JSON value and are read
    back as plain JSON (``dict``/``list``/``str``/``int``/``float``/``bool``; tuples come back as
    lists). All settings of a guild are cached as one entry, dropped on every change.

Values are JSON within the bounds of :mod:`botdata.managers.checks`: at most 32 levels of nesting
and 64 KiB of JSON text each (checked on what is stored: a registered model's dump). Module and
key names, and every string in a value, are storable text (no NUL, no surrogates).

Every write first makes sure the guild exists (``INSERT ... ON CONFLICT DO NOTHING`` of the guild
and its default configuration, in the write's transaction), so it is safe when several processes
touch the same new guild at once.
"""

from __future__ import annotations

import copy
import json
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from botdata.errors import (
    InvalidPrefixError,
    InvalidSettingNameError,
    InvalidSettingValueError,
    SettingNotSerializableError,
    UnknownConfigFieldError,
)
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, checked, excerpt, json_text, snowflake, text
from botdata.models import Guild, GuildConfig, GuildSetting
from botdata.models.base import MAX_SNOWFLAKE, MIN_SNOWFLAKE
from botdata.schemas import GuildConfigSchema, GuildSchema

if TYPE_CHECKING:
    from botdata.database import Database

# Cache key names of this manager's per-guild entries.
CONFIG_KEY = "guild_config"
SETTINGS_KEY = "guild_settings"

#: Fields ``update_config`` accepts: every configuration column but the guild's id.
CONFIG_FIELDS = frozenset(GuildConfigSchema.model_fields) - {"guild_id"}
#: Parsed settings :meth:`GuildManager.get_setting` keeps for reuse.
PARSED_SETTINGS: Final = 16_384
_PREFIX = re.compile(r"\S{1,10}")
_NAME_LENGTH = 100


async def insert_guild_rows(guild_id: int, connection: BaseDBAsyncClient) -> None:
    """Create the guild and its default configuration unless they exist (``ON CONFLICT DO
    NOTHING``), on ``connection`` (a transaction). Concurrent callers never conflict."""
    await Guild.bulk_create([Guild(id=guild_id)], ignore_conflicts=True, using_db=connection)
    await GuildConfig.bulk_create(
        [GuildConfig(guild_id=guild_id)], ignore_conflicts=True, using_db=connection
    )


class GuildManager(Manager):
    """Guilds, their configuration (cached) and their dynamic settings. Reached as ``db.guilds``."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._setting_models: dict[tuple[str, str], type[BaseModel]] = {}
        # (guild, module, key) -> (stored JSON, the frozen model parsed from it).
        self._parsed: OrderedDict[tuple[int, str, str], tuple[Any, BaseModel]] = OrderedDict()
        self._config_key = self.guild_keys(CONFIG_KEY)
        self._settings_key = self.guild_keys(SETTINGS_KEY)

    # Guilds ------------------------------------------------------------------------------------

    @checked
    async def ensure(self, guild_id: Snowflake) -> GuildSchema:
        """Create the guild and its default configuration if they do not exist yet.

        Safe when many processes call it at once for the same new guild: both inserts are
        ``INSERT ... ON CONFLICT DO NOTHING`` in one transaction.
        Returns the guild. Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        async with in_transaction() as connection:
            await insert_guild_rows(guild_id, connection)
            guild = await Guild.get(id=guild_id, using_db=connection)
        return GuildSchema.model_validate(guild)

    async def remove(self, guild_id: int) -> bool:
        """Delete the guild and, by cascade, every row of it (the bot left the guild).

        Drops every cached copy of the guild's rows (whichever manager cached them) from
        every process's cache. Returns whether a guild was removed. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        snowflake(guild_id, "guild_id")
        removed = await Guild.filter(id=guild_id).delete()
        await self.cache.invalidate_guild(guild_id)
        return removed > 0

    # Configuration -----------------------------------------------------------------------------

    async def config(self, guild_id: int) -> GuildConfigSchema:
        """The guild's configuration, cached (hot layer, then the shared cache, then the database).

        A guild without a configuration row gets the defaults; nothing is written.
        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        key = self._config_key(snowflake(guild_id, "guild_id"))
        hit: GuildConfigSchema | None = self.cache.hot_get(key)
        if hit is not None:
            return hit

        async def load() -> GuildConfigSchema:
            row = await GuildConfig.get_or_none(guild_id=guild_id)
            if row is None:
                return GuildConfigSchema(guild_id=guild_id)
            return GuildConfigSchema.model_validate(row)

        return await self.cache.get_or_load(
            key, load, self.settings.GUILD_CONFIG_TTL, hot=True, model=GuildConfigSchema
        )

    async def prefix(self, guild_id: int | None) -> str:
        """The guild's command prefix, or ``DEFAULT_PREFIX`` (also for ``None``: a DM).

        The per-message path: once the configuration is cached, a hot-layer lookup. For
        discord.py::

            command_prefix=lambda bot, msg: db.guilds.prefix(msg.guild and msg.guild.id)

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        if guild_id is None:
            return self.settings.DEFAULT_PREFIX
        # Validated by config() unless the hot layer knows the guild (then it is an id; the
        # range keeps ints too long to print out of the key).
        known = type(guild_id) is int and MIN_SNOWFLAKE <= guild_id <= MAX_SNOWFLAKE
        config = self.cache.hot_get(self._config_key(guild_id)) if known else None
        if config is None:
            config = await self.config(guild_id)
        return config.prefix or self.settings.DEFAULT_PREFIX

    async def update_config(
        self, guild_id: int, *, updated_by: int | None = None, **fields: Any
    ) -> GuildConfigSchema:
        """Set configuration fields (``None`` clears one: a cleared prefix means the default).

        Every value is checked before anything is written; the guild is created if needed. The
        cached configuration is dropped in every process. Returns the new configuration.
        Raises :class:`~botdata.errors.UnknownConfigFieldError` for a name that is not a
        configuration field, :class:`~botdata.errors.InvalidPrefixError` for a prefix that is
        not 1-10 characters without whitespace, :class:`~botdata.errors.UnstorableTextError` for
        a prefix with a NUL or a surrogate, :class:`~botdata.errors.InvalidSnowflakeError` for a
        bad guild, channel, role or ``updated_by`` id.
        """
        snowflake(guild_id, "guild_id")
        unknown = sorted(set(fields) - CONFIG_FIELDS)
        if unknown:
            raise UnknownConfigFieldError(f"not guild configuration fields: {excerpt(unknown)}")
        for name, value in fields.items():
            if name == "prefix":
                text(value, "prefix")
                if value is not None and not (isinstance(value, str) and _PREFIX.fullmatch(value)):
                    raise InvalidPrefixError(
                        f"prefix {excerpt(value)} must be 1-10 characters without whitespace"
                    )
            elif value is not None:
                snowflake(value, name)
        if updated_by is not None:
            snowflake(updated_by, "updated_by")
        async with in_transaction() as connection:
            await insert_guild_rows(guild_id, connection)
            await (
                GuildConfig.filter(guild_id=guild_id)
                .using_db(connection)
                .update(**fields, updated_by=updated_by, updated_at=self.db.clock.now())
            )
            row = await GuildConfig.get(guild_id=guild_id, using_db=connection)
        await self.cache.invalidate(self._config_key(guild_id))
        return GuildConfigSchema.model_validate(row)

    # Dynamic settings --------------------------------------------------------------------------

    def register_settings(self, module: str, key: str, model: type[BaseModel]) -> None:
        """Validate the values of ``module``'s setting ``key`` with the pydantic ``model``.

        From then on :meth:`set_setting` accepts only values ``model`` validates (an instance or
        its data) and stores ``model_dump(mode="json")``; :meth:`get_setting` and
        :meth:`module_settings` return ``model`` instances. Registering again replaces the model
        (a reloaded cog). Returns nothing. Raises
        :class:`~botdata.errors.InvalidSettingNameError` for a bad module or key
        (:class:`~botdata.errors.UnstorableTextError` for a NUL or a surrogate in one) and
        ``TypeError`` when ``model`` is not a pydantic model class.
        """
        _check_setting_name(module, "module")
        _check_setting_name(key, "key")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{model!r} is not a pydantic model class")
        self._setting_models[module, key] = model
        self._parsed.clear()

    async def get_setting(self, guild_id: int, module: str, key: str, default: Any = None) -> Any:
        """The value of ``module``'s setting ``key`` in the guild, or ``default`` when unset.

        Returns an instance of the registered model (of a frozen model, the same instance while
        the setting is unchanged), or else the JSON value (a fresh copy).
        Cached. Raises :class:`~botdata.errors.InvalidSettingNameError` for a bad module or key
        (:class:`~botdata.errors.UnstorableTextError` for a NUL or a surrogate in one),
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id and
        :class:`~botdata.errors.InvalidSettingValueError` when the stored value no longer
        matches the registered model.
        """
        _check_setting_name(module, "module")
        _check_setting_name(key, "key")
        stored = (await self._all_settings(guild_id)).get(module, {})
        if key not in stored:
            return default
        value = stored[key]
        # The per-message paths read settings on every message: a frozen model parsed from
        # this very value (the hot layer hands out the same object until it changes) is reused.
        known = self._parsed.get((guild_id, module, key))
        if known is not None and known[0] is value:
            self._parsed.move_to_end((guild_id, module, key))
            return known[1]
        parsed = self._parse(module, key, value)
        if isinstance(parsed, BaseModel) and parsed.model_config.get("frozen"):
            self._parsed[guild_id, module, key] = (value, parsed)
            if len(self._parsed) > PARSED_SETTINGS:
                self._parsed.popitem(last=False)
        return parsed

    async def module_settings(self, guild_id: int, module: str) -> dict[str, Any]:
        """Every setting of ``module`` in the guild, ``{key: value}`` (values as in
        :meth:`get_setting`); empty when none is set.

        Raises :class:`~botdata.errors.InvalidSettingNameError` for a bad module
        (:class:`~botdata.errors.UnstorableTextError` for a NUL or a surrogate in it),
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id and
        :class:`~botdata.errors.InvalidSettingValueError` when a stored value no longer matches
        its registered model.
        """
        _check_setting_name(module, "module")
        stored = (await self._all_settings(guild_id)).get(module, {})
        return {key: self._parse(module, key, value) for key, value in stored.items()}

    async def set_setting(
        self,
        guild_id: int,
        module: str,
        key: str,
        value: Any,
        *,
        updated_by: int | None = None,
    ) -> Any:
        """Set ``module``'s setting ``key`` in the guild (an atomic upsert), creating the guild
        if needed; the cached settings are dropped in every process.

        Returns the value as :meth:`get_setting` will return it.
        Raises :class:`~botdata.errors.InvalidSettingNameError` for a bad module or key,
        :class:`~botdata.errors.InvalidSettingValueError` when the registered model rejects
        ``value``, :class:`~botdata.errors.SettingNotSerializableError` when ``value`` (or the
        registered model's dump of it) is not JSON within the bounds (or is None),
        :class:`~botdata.errors.UnstorableTextError` for a name or a string in the value with a
        NUL or a surrogate, :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild or
        ``updated_by`` id. Nothing is written when it raises.
        """
        snowflake(guild_id, "guild_id")
        _check_setting_name(module, "module")
        _check_setting_name(key, "key")
        if updated_by is not None:
            snowflake(updated_by, "updated_by")
        model = self._setting_models.get((module, key))
        if model is not None:
            try:
                parsed = model.model_validate(value)
            except PydanticValidationError as exc:
                raise InvalidSettingValueError(
                    f"invalid value for setting {module}.{key}: {_first_error(exc)}"
                ) from None
            try:
                value = parsed.model_dump(mode="json")
            except ValueError as exc:  # e.g. nested past pydantic's own depth limit
                raise SettingNotSerializableError(
                    f"setting {module}.{key}: value is not JSON ({excerpt(str(exc))})"
                ) from None
        if value is None:
            raise SettingNotSerializableError(
                f"setting {module}.{key}: None cannot be stored; delete the setting instead"
            )
        encoded = json_text(value, f"setting {module}.{key}: value", SettingNotSerializableError)
        row = GuildSetting(
            guild_id=guild_id, module=module, key=key, created_by=updated_by, updated_by=updated_by
        )
        # Tortoise's JSONField writes a str as JSON text (and its constructor would decode it):
        # assigning the encoded text stores every value, strings included, unchanged.
        row.value = encoded
        async with in_transaction() as connection:
            await insert_guild_rows(guild_id, connection)
            await GuildSetting.bulk_create(
                [row],
                on_conflict=["guild_id", "module", "key"],
                update_fields=["value", "updated_by", "updated_at"],
                using_db=connection,
            )
        await self.cache.invalidate(self._settings_key(guild_id))
        return self._parse(module, key, json.loads(encoded))

    async def delete_setting(self, guild_id: int, module: str, key: str) -> bool:
        """Remove ``module``'s setting ``key`` from the guild; the cached settings are dropped in
        every process.

        Returns whether a setting was removed. Raises
        :class:`~botdata.errors.InvalidSettingNameError` for a bad module or key
        (:class:`~botdata.errors.UnstorableTextError` for a NUL or a surrogate in one) and
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id.
        """
        snowflake(guild_id, "guild_id")
        _check_setting_name(module, "module")
        _check_setting_name(key, "key")
        removed = await GuildSetting.filter(guild_id=guild_id, module=module, key=key).delete()
        if removed:
            await self.cache.invalidate(self._settings_key(guild_id))
        return removed > 0

    async def _all_settings(self, guild_id: int) -> dict[str, dict[str, Any]]:
        """``{module: {key: JSON}}`` of the guild, cached (hot); callers must not mutate it."""
        key = self._settings_key(snowflake(guild_id, "guild_id"))
        hit: dict[str, dict[str, Any]] | None = self.cache.hot_get(key)
        if hit is not None:
            return hit

        async def load() -> dict[str, dict[str, Any]]:
            result: dict[str, dict[str, Any]] = {}
            rows = await GuildSetting.filter(guild_id=guild_id).values_list(
                "module", "key", "value"
            )
            for module, name, value in rows:
                result.setdefault(module, {})[name] = value
            return result

        return await self.cache.get_or_load(key, load, self.settings.GUILD_CONFIG_TTL, hot=True)

    def _parse(self, module: str, key: str, value: Any) -> Any:
        """A stored value as the caller gets it: a model instance or a copy of the JSON."""
        model = self._setting_models.get((module, key))
        if model is None:
            return copy.deepcopy(value)
        try:
            return model.model_validate(value)
        except PydanticValidationError as exc:
            raise InvalidSettingValueError(
                f"stored value of setting {module}.{key} does not match {model.__name__}: "
                f"{_first_error(exc)}"
            ) from None


def _check_setting_name(name: object, what: str) -> None:
    text(name, f"setting {what}")
    if not isinstance(name, str) or not 1 <= len(name) <= _NAME_LENGTH:
        raise InvalidSettingNameError(
            f"setting {what} must be a string of 1-{_NAME_LENGTH} characters, not {excerpt(name)}"
        )


def _first_error(exc: PydanticValidationError) -> str:
    """The first of pydantic's complaints, with the count of the others (a value may break a
    rule in thousands of places; the message stays short)."""
    first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    others = exc.error_count() - 1
    return f"{excerpt(where)}: {first['msg']}" + (f" (and {others} more)" if others else "")
