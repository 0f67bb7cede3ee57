"""db.privacy: exhaustive export and erasure of one user's data (both backends).

The rows are made with the models directly, so that every table can be filled whatever the
other managers offer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel
from tortoise import Tortoise, fields
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.queryset import QuerySet

import botdata
from botdata.errors import InvalidFlagError, InvalidSnowflakeError
from botdata.managers.privacy import (
    ACTION_FIELDS,
    KEPT_TEXT,
    PLACEHOLDER,
    REFERENCES,
    SECRET_COLUMNS,
    Erase,
)
from botdata.managers.sql import dialect_sql
from botdata.models import (
    AFK,
    AccessType,
    Case,
    CaseEdit,
    CaseType,
    CustomCaseType,
    Guild,
    GuildConfig,
    GuildPermission,
    GuildSetting,
    Levels,
    Note,
    PermissionType,
    Reminder,
    Snippet,
    SnippetName,
    Starboard,
    StarboardMessage,
    StarboardStar,
    WebGuildPermission,
    WebSession,
    WebUser,
    __models__,
)
from botdata.models.base import SnowflakeValidator

USER = 1 << 44  # the data subject
OTHER = (1 << 44) + 1  # another member
MOD = (1 << 44) + 2  # a moderator
GUILD = 1 << 40
CHANNEL = 1 << 41

#: Discord-id columns that can never hold a user id.
NOT_USER_ID = re.compile(r"guild_id|.*(channel|role|log|message)_id")


def user_id_columns() -> set[tuple[str, str]]:
    """(table, column) of every Discord-id column of every model that may hold a user id."""
    found = set()
    for model in __models__:
        table = model._meta.db_table
        for name, column in model._meta.fields_db_projection.items():
            field = model._meta.fields_map[name]
            if not any(isinstance(v, SnowflakeValidator) for v in field.validators):
                continue
            if NOT_USER_ID.fullmatch(column) or (model is Guild and column == "id"):
                continue
            found.add((table, column))
    return found


@dataclass
class Rows:
    """What :func:`populate` made."""

    case_about_user: Case
    case_by_user: Case
    case_unrelated: Case
    note_about_user: Note
    deleted_note_about_user: Note
    note_by_user: Note
    note_unrelated: Note
    member_rule: GuildPermission
    role_rule: GuildPermission
    rule_by_user: GuildPermission
    user_snippet: Snippet
    other_snippet: Snippet
    user_message: StarboardMessage
    other_message: StarboardMessage
    user_session: WebSession


async def populate() -> Rows:
    """Rows of every table concerning USER, and rows of OTHER and MOD around them."""
    now = datetime.now(timezone.utc)
    await Guild.create(id=GUILD)
    await GuildConfig.create(guild_id=GUILD, created_by=USER, updated_by=OTHER, prefix="!")
    await GuildSetting.create(
        guild_id=GUILD, module="m", key="a", value={"x": 1}, created_by=OTHER, updated_by=USER
    )
    await GuildSetting.create(guild_id=GUILD, module="m", key="b", value=2, created_by=OTHER)
    await CustomCaseType.create(guild_id=GUILD, name="spam", display_name="Spam", created_by=USER)

    def case(number: int, user: int, moderator: int, **extra: Any) -> Any:
        return Case.create(
            guild_id=GUILD,
            number=number,
            type=CaseType.WARN,
            reason=f"reason {number}",
            user_id=user,
            moderator_id=moderator,
            **extra,
        )

    case_about_user = await case(1, USER, MOD, created_by=MOD)
    case_by_user = await case(2, OTHER, USER, voided_by=USER, updated_by=USER, active=False)
    case_unrelated = await case(3, OTHER, MOD)
    await CaseEdit.create(case=case_about_user, editor_id=MOD, old_reason="a", new_reason="b")
    await CaseEdit.create(case=case_by_user, editor_id=USER, old_reason="c", new_reason="d")
    await CaseEdit.create(case=case_unrelated, editor_id=MOD, old_reason="e", new_reason="f")

    def note(number: int, user: int, moderator: int, **extra: Any) -> Any:
        return Note.create(
            guild_id=GUILD,
            number=number,
            user_id=user,
            moderator_id=moderator,
            content=f"note {number}",
            **extra,
        )

    note_about_user = await note(1, USER, MOD)
    deleted_note_about_user = await note(2, USER, MOD, is_deleted=True, deleted_by=MOD)
    note_by_user = await note(3, OTHER, USER, is_deleted=True, deleted_by=USER)
    note_unrelated = await note(4, OTHER, MOD)

    def rule(kind: PermissionType, target: int, **extra: Any) -> Any:
        return GuildPermission.create(
            guild_id=GUILD,
            type=kind,
            access=AccessType.BLACKLIST,
            target_id=target,
            command="ban",
            **extra,
        )

    member_rule = await rule(PermissionType.MEMBER, USER, target_name="alice", created_by=MOD)
    # a role that happens to have the same number is not the user
    role_rule = await rule(PermissionType.ROLE, USER, target_name="Helpers")
    rule_by_user = await rule(PermissionType.MEMBER, OTHER, created_by=USER, updated_by=USER)

    user_snippet = await Snippet.create(guild_id=GUILD, content="mine", author_id=USER)
    await SnippetName.create(guild_id=GUILD, snippet=user_snippet, name="Mine", key="mine")
    await SnippetName.create(guild_id=GUILD, snippet=user_snippet, name="m", key="m", is_alias=True)
    other_snippet = await Snippet.create(
        guild_id=GUILD, content="theirs", author_id=OTHER, updated_by=USER
    )
    await SnippetName.create(guild_id=GUILD, snippet=other_snippet, name="theirs", key="theirs")

    for member in (USER, OTHER):
        await Reminder.create(
            guild_id=GUILD, user_id=member, channel_id=CHANNEL, content="hi", due_at=now
        )
        await AFK.create(guild_id=GUILD, member_id=member, nickname="nick", reason="away")
        await Levels.create(guild_id=GUILD, member_id=member, xp=10, level=1)

    await Starboard.create(guild_id=GUILD, channel_id=CHANNEL, threshold=1)
    user_message = await StarboardMessage.create(
        guild_id=GUILD,
        message_id=1 << 42,
        channel_id=CHANNEL,
        author_id=USER,
        starboard_message_id=1 << 43,
        stars=1,
    )
    other_message = await StarboardMessage.create(
        guild_id=GUILD, message_id=(1 << 42) + 1, channel_id=CHANNEL, author_id=OTHER, stars=2
    )
    await StarboardStar.create(message=user_message, user_id=OTHER)
    await StarboardStar.create(message=other_message, user_id=USER)
    await StarboardStar.create(message=other_message, user_id=MOD)

    sessions = {}
    for member in (USER, OTHER):
        await WebUser.create(id=member, username=f"user{member}", email=f"{member}@example.org")
        sessions[member] = await WebSession.create(
            user_id=member,
            token_hash=f"{member:064x}",
            expires_at=now + timedelta(days=1),
            ip_address="192.0.2.1",
        )
        await WebGuildPermission.create(user_id=member, guild_id=GUILD, level=3)

    return Rows(
        case_about_user,
        case_by_user,
        case_unrelated,
        note_about_user,
        deleted_note_about_user,
        note_by_user,
        note_unrelated,
        member_rule,
        role_rule,
        rule_by_user,
        user_snippet,
        other_snippet,
        user_message,
        other_message,
        sessions[USER],
    )


def ids(rows: list[dict[str, Any]], key: str = "id") -> set[Any]:
    return {row[key] for row in rows}


# Coverage ----------------------------------------------------------------------------------------


def test_every_user_id_column_of_every_model_is_covered() -> None:
    # A new model (or column) holding a user id must be added to privacy.REFERENCES.
    covered = {(ref.table, ref.lookup) for ref in REFERENCES if ref.export}
    # and a table where users act names the action's identifying fields for their export
    acting = {ref.table for ref in REFERENCES if ref.erase in (Erase.KEEP, Erase.ANONYMISE)}
    assert acting == set(ACTION_FIELDS)
    missing = user_id_columns() - covered
    assert not missing, f"user-id columns not covered by privacy.REFERENCES: {sorted(missing)}"
    # and the classification finds what it should (the check above is not vacuous)
    assert {("web_users", "id"), ("cases", "voided_by"), ("guild_permissions", "target_id")} <= (
        user_id_columns()
    )


async def test_export_contains_every_table_concerning_the_user(
    botdata_db: botdata.Database,
) -> None:
    rows = await populate()
    export = await botdata_db.privacy.export_user(USER)
    assert export["user_id"] == USER
    datetime.fromisoformat(export["exported_at"])
    json.dumps(export)  # JSON-serialisable as is
    tables, actions = export["tables"], export["actions"]

    # every table with a user-id column has the user's rows, or their actions
    for table, _ in user_id_columns():
        assert tables.get(table) or any(a["table"] == table for a in actions), table
    subject = (Erase.DELETE, Erase.MODERATION)
    assert set(tables) == {ref.table for ref in REFERENCES if ref.export and ref.erase in subject}

    # records about them whole; where they only acted, an action (test_a_moderators_export_...)
    assert ids(tables["cases"]) == {rows.case_about_user.id}
    assert ids(tables["case_edits"], "case_id") == {rows.case_about_user.id}
    # soft-deleted notes are exported too
    assert ids(tables["notes"]) == {rows.note_about_user.id, rows.deleted_note_about_user.id}
    assert ids(tables["guild_permissions"]) == {rows.member_rule.id}
    assert ids(tables["snippets"]) == {rows.user_snippet.id}
    assert {row["name"] for row in tables["snippet_names"]} == {"Mine", "m"}
    assert ids(tables["starboard_messages"]) == {rows.user_message.id}
    # their own star, not the stars others gave them
    assert [(row["message_id"], row["user_id"]) for row in tables["starboard_stars"]] == [
        (rows.other_message.id, USER)
    ]
    for table in ("reminders", "afk", "levels", "web_guild_permissions", "web_sessions"):
        assert len(tables[table]) == 1
    assert tables["web_users"][0]["email"] == f"{USER}@example.org"

    # sessions: metadata, never the token hash
    session = tables["web_sessions"][0]
    assert session["ip_address"] == "192.0.2.1"
    assert "token_hash" not in session
    assert SECRET_COLUMNS["web_sessions"] == {"token_hash"}
    assert rows.user_session.token_hash not in json.dumps(export)
    # times are ISO strings
    assert datetime.fromisoformat(session["expires_at"]) > datetime.now(timezone.utc)

    # nothing of other users: each row names the user, or belongs to one of theirs
    for table, exported in tables.items():
        for row in exported:
            if table == "snippet_names":
                assert row["snippet_id"] == rows.user_snippet.id
            elif table == "case_edits":
                assert row["case_id"] == rows.case_about_user.id
            else:
                assert USER in row.values(), (table, row)


async def test_a_moderators_export_lists_their_actions_without_others_data(
    botdata_db: botdata.Database,
) -> None:
    # Issue #9 point 7: a moderator's export handed out other members' reasons and notes.
    rows = await populate()
    await Case.filter(id=rows.case_by_user.id).update(reason=f"private reason about {OTHER}")
    await QuerySet(Note).filter(id=rows.note_by_user.id).update(content="private remark")
    export = await botdata_db.privacy.export_user(USER)
    text = json.dumps(export)
    for private in ("private reason", "private remark", str(OTHER), "theirs"):
        assert private not in text, private
    # what they did in others' rows: identified, with their roles and dates, nothing more
    guild = {"guild_id": GUILD}
    case_2 = {"table": "cases", **guild, "number": 2, "type": "WARN", "custom_type_id": None}
    note_3 = {"table": "notes", **guild, "number": 3}
    rule = {"table": "guild_permissions", **guild, "id": rows.rule_by_user.id, "type": "member"}
    expected = [
        ({"table": "guild_configs", **guild}, {"created_by"}),
        ({"table": "guild_settings", **guild, "module": "m", "key": "a"}, {"updated_by"}),
        ({"table": "custom_case_types", **guild, "name": "spam"}, {"created_by"}),
        (case_2, {"moderator_id", "updated_by", "voided_by"}),
        ({**case_2, "table": "case_edits"}, {"editor_id"}),
        (note_3, {"moderator_id", "deleted_by"}),
        (rule, {"created_by", "updated_by"}),
        ({"table": "snippets", **guild, "id": rows.other_snippet.id}, {"updated_by"}),
    ]
    got = [
        ({k: v for k, v in action.items() if k != "roles"}, set(action["roles"]))
        for action in export["actions"]
    ]
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    [moderated] = [a for a in export["actions"] if a["table"] == "cases"]
    assert datetime.fromisoformat(moderated["roles"]["moderator_id"]) == (
        rows.case_by_user.created_at
    )
    assert moderated["roles"]["voided_by"] is None  # populate set no voided_at


async def test_export_of_a_stranger_is_empty(botdata_db: botdata.Database) -> None:
    await populate()
    export = await botdata_db.privacy.export_user(1 << 50)
    assert all(rows == [] for rows in export["tables"].values())
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.privacy.export_user(17)


# Erasure -----------------------------------------------------------------------------------------


async def test_erase_keeps_moderation_records_by_default(botdata_db: botdata.Database) -> None:
    rows = await populate()
    await botdata_db.cache.set_json(
        botdata_db.cache.key("anything", guild_id=GUILD), {"stale": USER}
    )
    other_before = await botdata_db.privacy.export_user(OTHER)

    summary = await botdata_db.privacy.erase_user(USER)

    # the user's own data is gone
    for model, column in (
        (Reminder, "user_id"),
        (AFK, "member_id"),
        (Levels, "member_id"),
        (Snippet, "author_id"),
        (StarboardMessage, "author_id"),
        (StarboardStar, "user_id"),
        (WebSession, "user_id"),
        (WebGuildPermission, "user_id"),
        (WebUser, "id"),
    ):
        assert await model.filter(**{column: USER}).count() == 0, model
    assert await SnippetName.filter(snippet_id=rows.user_snippet.id).count() == 0
    # the message they starred lost their star, not MOD's
    assert (await StarboardMessage.get(id=rows.other_message.id)).stars == 1
    assert await StarboardStar.filter(message_id=rows.other_message.id).count() == 1

    # moderation records about them are kept whole
    kept_case = await Case.get(id=rows.case_about_user.id)
    assert (kept_case.user_id, kept_case.reason) == (USER, "reason 1")
    assert await CaseEdit.filter(case_id=rows.case_about_user.id).count() == 1
    assert await QuerySet(Note).filter(user_id=USER).count() == 2
    member_rule = await GuildPermission.get(id=rows.member_rule.id)
    assert (member_rule.target_id, member_rule.target_name) == (USER, None)  # name scrubbed
    assert (await GuildPermission.get(id=rows.role_rule.id)).target_name == "Helpers"

    # records where they moderated are kept; audit pointers to them are cleared
    case_by_user = await Case.get(id=rows.case_by_user.id)
    assert (case_by_user.moderator_id, case_by_user.voided_by, case_by_user.updated_by) == (
        USER,
        None,
        None,
    )
    assert await CaseEdit.filter(editor_id=USER).count() == 1
    note_by_user = await QuerySet(Note).get(id=rows.note_by_user.id)
    assert (note_by_user.moderator_id, note_by_user.deleted_by) == (USER, None)
    rule_by_user = await GuildPermission.get(id=rows.rule_by_user.id)
    assert (rule_by_user.created_by, rule_by_user.updated_by) == (None, None)
    config = await GuildConfig.get(guild_id=GUILD)
    assert (config.created_by, config.updated_by, config.prefix) == (None, OTHER, "!")
    setting = await GuildSetting.get(key="a")
    assert (setting.created_by, setting.updated_by, setting.value) == (OTHER, None, {"x": 1})
    assert (await CustomCaseType.get(name="spam")).created_by is None
    other_snippet = await Snippet.get(id=rows.other_snippet.id)
    assert (other_snippet.author_id, other_snippet.updated_by) == (OTHER, None)

    # what remains about the user is exactly the kept moderation records
    after = (await botdata_db.privacy.export_user(USER))["tables"]
    assert {table for table, found in after.items() if found} == {
        "cases",
        "case_edits",
        "notes",
        "guild_permissions",
    }
    assert ids(after["guild_permissions"]) == {rows.member_rule.id}

    # the other member's data is intact (bar their star on the user's erased message)
    other_after = await botdata_db.privacy.export_user(OTHER)
    for table, found in other_before["tables"].items():
        expected = ids(found) if table != "guild_configs" else ids(found, "guild_id")
        got = other_after["tables"][table]
        got_ids = ids(got) if table != "guild_configs" else ids(got, "guild_id")
        if table == "starboard_stars":
            expected = set()  # their one star was on the user's (erased) message
        assert got_ids == expected, table
    assert await Reminder.filter(user_id=OTHER).count() == 1
    assert await WebUser.filter(id=OTHER).count() == 1
    assert await WebSession.filter(user_id=OTHER).count() == 1
    assert await Case.get(id=rows.case_unrelated.id) is not None

    assert summary.user_id == USER
    assert summary.deleted["reminders"] == 1
    assert summary.deleted["snippet_names"] == 2
    assert summary.deleted["starboard_stars"] == 2  # theirs, and the one on their message
    assert summary.deleted["web_users"] == 1
    assert summary.deleted["cases"] == summary.deleted["notes"] == 0
    assert summary.anonymised["cases"] == 1
    assert summary.anonymised["guild_permissions"] == 2  # the scrubbed name, the audit fields
    assert summary.anonymised["notes"] == 1
    assert {table: n for table, n in summary.kept.items() if n} == {
        "case_edits": 2,
        "cases": 2,
        "notes": 3,
        "guild_permissions": 1,
    }
    assert [c.starboard_message_id for c in summary.starboard_copies] == [1 << 43]
    # the AFK status it deleted, so that the bot gives the nickname back
    assert [(a.guild_id, a.member_id, a.nickname) for a in summary.afk_statuses] == [
        (GUILD, USER, "nick")
    ]
    # caches may hold erased data: they are dropped
    assert await botdata_db.cache.get_json(botdata_db.cache.key("anything", guild_id=GUILD)) is None


async def test_erase_without_moderation_records(botdata_db: botdata.Database) -> None:
    rows = await populate()
    summary = await botdata_db.privacy.erase_user(USER, keep_moderation_records=False)

    assert await Case.filter(user_id=USER).count() == 0
    assert await CaseEdit.filter(case_id=rows.case_about_user.id).count() == 0
    assert await QuerySet(Note).filter(user_id=USER).count() == 0
    assert not await GuildPermission.filter(id=rows.member_rule.id).exists()
    assert await GuildPermission.filter(id=rows.role_rule.id).exists()
    # other members' records in which they moderated stay
    assert (await Case.get(id=rows.case_by_user.id)).moderator_id == USER
    assert (await QuerySet(Note).get(id=rows.note_by_user.id)).moderator_id == USER
    assert await Case.all().count() == 2
    assert await QuerySet(Note).all().count() == 2

    assert summary.deleted["cases"] == 1
    assert summary.deleted["notes"] == 2
    assert summary.deleted["case_edits"] == 1
    assert summary.deleted["guild_permissions"] == 1
    assert {table: n for table, n in summary.kept.items() if n} == {
        "case_edits": 1,
        "cases": 1,
        "notes": 1,
    }
    after = await botdata_db.privacy.export_user(USER)
    assert {table for table, found in after["tables"].items() if found} == set()
    # what remains are their actions in others' records
    assert {(a["table"], tuple(a["roles"])) for a in after["actions"]} == {
        ("cases", ("moderator_id",)),
        ("case_edits", ("editor_id",)),
        ("notes", ("moderator_id",)),
    }


async def test_erase_rejects_bad_input_and_changes_nothing(botdata_db: botdata.Database) -> None:
    await populate()
    before = await botdata_db.privacy.export_user(USER)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.privacy.erase_user(5)
    with pytest.raises(InvalidFlagError):
        await botdata_db.privacy.erase_user(USER, keep_moderation_records="no")  # type: ignore[arg-type]
    after = await botdata_db.privacy.export_user(USER)
    assert after["tables"] == before["tables"]


async def test_erasing_a_stranger_changes_nothing(botdata_db: botdata.Database) -> None:
    await populate()
    before = await botdata_db.privacy.export_user(USER)
    summary = await botdata_db.privacy.erase_user(1 << 50)
    assert all(count == 0 for count in summary.deleted.values())
    assert all(count == 0 for count in summary.anonymised.values())
    assert (await botdata_db.privacy.export_user(USER))["tables"] == before["tables"]


def test_policies_are_declared_for_every_reference() -> None:
    # moderation subjects are the only rows erasure may keep while naming the user as subject
    kinds = {(ref.table, ref.lookup): ref.erase for ref in REFERENCES}
    assert kinds["cases", "user_id"] is Erase.MODERATION
    assert kinds["notes", "user_id"] is Erase.MODERATION
    assert kinds["cases", "moderator_id"] is Erase.KEEP
    for audit in ("created_by", "updated_by"):
        assert kinds["guild_configs", audit] is Erase.ANONYMISE


# Scrubbing the id from what stays ----------------------------------------------------------------


def text_columns() -> set[tuple[str, str]]:
    """(table, column) of every text and JSON column of every model (enums are no text)."""
    return {
        (model._meta.db_table, column)
        for model in __models__
        for name, column in model._meta.fields_db_projection.items()
        if isinstance(model._meta.fields_map[name], (fields.CharField, fields.JSONField))
        and not isinstance(model._meta.fields_map[name], CharEnumFieldInstance)
    }


async def holding(db: botdata.Database, user_id: int) -> set[tuple[str, str]]:
    """(table, column) of the text and JSON columns where some row holds ``user_id``'s digits."""
    conn = Tortoise.get_connection("default")
    found = set()
    for table, column in text_columns():
        query = f'SELECT 1 AS hit FROM "{table}" WHERE CAST("{column}" AS TEXT) LIKE $1 LIMIT 1'
        if await conn.execute_query_dict(dialect_sql(query, db.dialect), [f"%{user_id}%"]):
            found.add((table, column))
    return found


class Exempt(BaseModel):
    """A registered settings model holding member ids."""

    members: list[int]


async def mention_everywhere(rows: Rows) -> None:
    """USER's id in every text and JSON column that can hold one, in rows that stay (other
    members', the guild's, kept moderation records) and in rows erasure deletes."""
    at, bang, bare = f"<@{USER}>", f"<@!{USER}>", str(USER)
    await GuildSetting.filter(key="a").update(module=f"mod-{bare}")
    await GuildSetting.filter(key="b").update(key=f"exempt-{bare}", value={"members": [USER]})
    await CustomCaseType.filter(name="spam").update(
        name=f"t{bare}", display_name=f"Type of {at}", description=f"see {bang}"
    )
    await Case.filter(id=rows.case_about_user.id).update(reason=f"{at} spammed")
    await Case.filter(id=rows.case_by_user.id).update(void_reason=f"{bang} appealed")
    await Case.filter(id=rows.case_unrelated.id).update(
        reason=f"spam towards {at}",
        metadata={"reporter": USER, "note": f"asked by {bare}", bare: [USER, 7]},
        user_roles=[11, USER],
    )
    await CaseEdit.filter(case_id=rows.case_unrelated.id).update(
        old_reason=f"about {at}", new_reason=f"about {bare}"
    )
    await QuerySet(Note).filter(id=rows.note_about_user.id).update(content=f"{bang} again")
    await QuerySet(Note).filter(id=rows.note_unrelated.id).update(content=f"friend of {at}")
    await GuildPermission.filter(id=rows.rule_by_user.id).update(
        target_name=f"pal of {bare}", command=f"c{bare}", module=f"m{bare}"
    )
    await Snippet.filter(id=rows.other_snippet.id).update(content=f"ask {at}")
    await Snippet.filter(id=rows.user_snippet.id).update(content=f"mine, {at}")  # deleted
    await SnippetName.filter(key="theirs").update(name=f"u{bare}", key=f"u{bare}")
    await Reminder.filter(user_id=OTHER).update(content=f"call {at}")
    await Reminder.filter(user_id=USER).update(content=f"{at} myself")  # deleted
    await AFK.filter(member_id=OTHER).update(reason=f"with {at}", nickname=f"fan of {bare}")
    await Starboard.filter(guild_id=GUILD).update(emoji=f"<:e:{bare}>")
    await WebUser.filter(id=OTHER).update(
        username=f"fan-{bare}", avatar=f"a{bare}", email=f"{bare}@example.org"
    )
    await WebSession.filter(user_id=OTHER).update(token_hash=bare.rjust(64, "0"), ip_address=bare)


async def test_erasure_leaves_the_id_only_where_documented(botdata_db: botdata.Database) -> None:
    # Issue #9 point 24: erase_user left the id in text and JSON all over the database.
    rows = await populate()
    await mention_everywhere(rows)
    botdata_db.guilds.register_settings("m", f"exempt-{USER}", Exempt)
    unfit = {("guild_configs", "prefix")}  # at most 10 characters: no id fits
    assert await holding(botdata_db, USER) == text_columns() - unfit  # every other column holds it

    summary = await botdata_db.privacy.erase_user(USER)

    assert await holding(botdata_db, USER) == {
        (table, column) for table, columns in KEPT_TEXT.items() for column in columns
    }
    unrelated = await Case.get(id=rows.case_unrelated.id)
    assert unrelated.reason == f"spam towards {PLACEHOLDER}"
    assert unrelated.metadata == {
        "reporter": None,
        "note": f"asked by {PLACEHOLDER}",
        PLACEHOLDER: [7],
    }
    assert unrelated.user_roles == [11]
    # the kept record about them is scrubbed too, and still a valid case
    about = await botdata_db.cases.get(GUILD, rows.case_about_user.number)
    assert (about.user_id, about.reason) == (USER, f"{PLACEHOLDER} spammed")
    assert (await botdata_db.cases.get(GUILD, rows.case_by_user.number)).void_reason == (
        f"{PLACEHOLDER} appealed"
    )
    edits = await CaseEdit.filter(case_id=rows.case_unrelated.id)
    assert [(e.old_reason, e.new_reason) for e in edits] == [
        (f"about {PLACEHOLDER}", f"about {PLACEHOLDER}")
    ]
    assert (await botdata_db.notes.get(GUILD, rows.note_unrelated.number)).content == (
        f"friend of {PLACEHOLDER}"
    )
    assert (await Reminder.get(user_id=OTHER)).content == f"call {PLACEHOLDER}"
    afk = await AFK.get(member_id=OTHER)
    assert (afk.reason, afk.nickname) == (f"with {PLACEHOLDER}", f"fan of {PLACEHOLDER}")
    # settings values stay whole, and their registered model still validates them
    setting = await botdata_db.guilds.get_setting(GUILD, "m", f"exempt-{USER}")
    assert setting == Exempt(members=[USER])
    # scrubbed rows count as anonymised
    for table in ("cases", "case_edits", "notes", "snippets", "reminders", "afk", "starboards"):
        assert summary.anonymised[table] >= 1, table
    assert summary.anonymised["reminders"] == summary.anonymised["afk"] == 1


async def test_scrubbing_leaves_longer_numbers_alone(botdata_db: botdata.Database) -> None:
    rows = await populate()
    text = f"ticket 9{USER}1, id {USER}0, by <@{USER}> (<@!{USER}>, {USER})"
    await QuerySet(Note).filter(id=rows.note_unrelated.id).update(content=text)
    await botdata_db.privacy.erase_user(USER)
    note = await botdata_db.notes.get(GUILD, rows.note_unrelated.number)
    assert note.content == (
        f"ticket 9{USER}1, id {USER}0, by {PLACEHOLDER} ({PLACEHOLDER}, {PLACEHOLDER})"
    )
