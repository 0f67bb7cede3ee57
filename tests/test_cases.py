"""db.cases: numbering, reads, cache, edits, voids, expiry claims and member status."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta, timezone

import pytest

from botdata.errors import (
    BuiltinCaseTypeNameError,
    CaseAlreadyVoidedError,
    CaseNotFoundError,
    CaseTypeNotFoundError,
    DurationNotAllowedError,
    DurationRequiredError,
    InvalidCaseMetadataError,
    InvalidCaseTypeNameError,
    InvalidExpiryError,
    InvalidNumberError,
    InvalidPageError,
    InvalidSnowflakeError,
    ReasonTooLongError,
)
from botdata.managers.cases import USER_CASES_KEY
from botdata.models import Case, CaseType, Guild
from tests.moderation_support import (
    GUILD,
    MOD,
    OTHER_GUILD,
    OTHER_MOD,
    OTHER_USER,
    USER,
    snapshot,
)

HOUR = timedelta(hours=1)


def later(delta: timedelta = timedelta(days=1)) -> datetime:
    return datetime.now(timezone.utc) + delta


# Creating ----------------------------------------------------------------------------------------


async def test_create_numbers_per_guild_and_makes_the_guild_row(botdata_db):
    assert not await Guild.exists(id=GUILD)
    first = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "spam")
    second = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.KICK, "more spam")
    other = await botdata_db.cases.create(OTHER_GUILD, USER, MOD, CaseType.BAN, "raid")
    assert (first.number, second.number, other.number) == (1, 2, 1)
    assert (await Guild.get(id=GUILD)).case_count == 2
    assert (await Guild.get(id=OTHER_GUILD)).case_count == 1
    assert (first.guild_id, first.user_id, first.moderator_id) == (GUILD, USER, MOD)
    assert first.type is CaseType.WARN
    assert first.custom_type_id is None
    assert first.reason == "spam"
    assert first.active
    assert first.expires_at is None
    row = await Case.get(id=first.id)
    assert row.created_by == MOD
    assert row.updated_by == MOD


async def test_create_stores_roles_metadata_and_expiry(botdata_db):
    before = datetime.now(timezone.utc)
    case = await botdata_db.cases.create(
        GUILD,
        USER,
        MOD,
        CaseType.TEMPBAN,
        "raid",
        duration=HOUR,
        user_roles=[400_000_000_000_000_001, 400_000_000_000_000_002],
        metadata={"message": "link", "count": 3},
    )
    assert before + HOUR <= case.expires_at <= datetime.now(timezone.utc) + HOUR
    assert case.user_roles == [400_000_000_000_000_001, 400_000_000_000_000_002]
    assert case.metadata == {"message": "link", "count": 3}
    assert await botdata_db.cases.get(GUILD, case.number) == case

    at = later(timedelta(days=2)).astimezone(timezone(timedelta(hours=5)))
    timeout = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.TIMEOUT, "x", expires_at=at)
    assert timeout.expires_at == at
    jail = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.JAIL, "timed", duration=HOUR)
    assert jail.expires_at is not None
    assert (
        await botdata_db.cases.create(GUILD, USER, MOD, CaseType.JAIL, "open")
    ).expires_at is None


async def test_create_with_a_custom_type_by_name(botdata_db):
    mute = await botdata_db.case_types.create(
        GUILD, "Mute", display_name="Mute", requires_duration=True
    )
    note = await botdata_db.case_types.create(GUILD, "verbal", display_name="Verbal warning")
    muted = await botdata_db.cases.create(GUILD, USER, MOD, "MUTE", "loud", duration=HOUR)
    assert muted.custom_type_id == mute.id
    assert muted.type is None
    assert muted.expires_at
    verbal = await botdata_db.cases.create(GUILD, USER, MOD, "verbal", "told off")
    assert verbal.custom_type_id == note.id
    assert verbal.expires_at is None


async def test_fifty_concurrent_creates_on_a_new_guild_number_1_to_50(botdata_db):
    cases = await asyncio.gather(
        *(botdata_db.cases.create(GUILD, USER + i, MOD, CaseType.WARN, f"r{i}") for i in range(50))
    )
    assert sorted(case.number for case in cases) == list(range(1, 51))
    assert (await Guild.get(id=GUILD)).case_count == 50
    assert sorted(await Case.filter(guild_id=GUILD).values_list("number", flat=True)) == list(
        range(1, 51)
    )


async def test_a_failed_insert_rolls_back_the_number(botdata_db, monkeypatch):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "one")
    gone = await botdata_db.case_types.create(GUILD, "gone", display_name="Gone")
    await botdata_db.case_types.delete(GUILD, "gone")

    async def stale_get(guild_id: int, name: str):  # the type is deleted after it was looked up
        return gone

    monkeypatch.setattr(botdata_db.case_types, "get", stale_get)
    before = await snapshot()
    with pytest.raises(CaseTypeNotFoundError):
        await botdata_db.cases.create(GUILD, USER, MOD, "gone", "never stored")
    assert await snapshot() == before
    monkeypatch.undo()
    assert (await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "two")).number == 2


BAD_CREATES = [
    ({"guild_id": 5}, InvalidSnowflakeError),
    ({"user_id": "200000000000000001"}, InvalidSnowflakeError),
    ({"moderator_id": True}, InvalidSnowflakeError),
    ({"user_roles": [1]}, InvalidSnowflakeError),
    ({"user_roles": 400_000_000_000_000_001}, InvalidSnowflakeError),
    ({"reason": "x" * 2001}, ReasonTooLongError),
    ({"reason": None}, ReasonTooLongError),
    ({"case_type": CaseType.TEMPBAN}, DurationRequiredError),
    ({"case_type": CaseType.TIMEOUT}, DurationRequiredError),
    ({"case_type": "timed"}, DurationRequiredError),
    ({"duration": HOUR}, DurationNotAllowedError),
    ({"case_type": CaseType.BAN, "expires_at": later()}, DurationNotAllowedError),
    ({"case_type": "plain", "duration": HOUR}, DurationNotAllowedError),
    ({"case_type": CaseType.TEMPBAN, "duration": timedelta(0)}, InvalidExpiryError),
    ({"case_type": CaseType.TEMPBAN, "duration": -HOUR}, InvalidExpiryError),
    ({"case_type": CaseType.TEMPBAN, "duration": 3600}, InvalidExpiryError),
    ({"case_type": CaseType.JAIL, "duration": -HOUR}, InvalidExpiryError),
    ({"case_type": CaseType.TIMEOUT, "expires_at": datetime(2100, 1, 1)}, InvalidExpiryError),
    (
        {"case_type": CaseType.TIMEOUT, "expires_at": datetime(2000, 1, 1, tzinfo=timezone.utc)},
        InvalidExpiryError,
    ),
    ({"case_type": CaseType.TEMPBAN, "duration": HOUR, "expires_at": later()}, InvalidExpiryError),
    ({"case_type": "unknown"}, CaseTypeNotFoundError),
    ({"case_type": "BAN"}, BuiltinCaseTypeNameError),
    ({"case_type": "not a name"}, InvalidCaseTypeNameError),
    ({"case_type": 5}, InvalidCaseTypeNameError),
    ({"metadata": {"x": object()}}, InvalidCaseMetadataError),
    ({"metadata": {1: "int key"}}, InvalidCaseMetadataError),
    ({"metadata": ["not", "a", "dict"]}, InvalidCaseMetadataError),
    ({"metadata": {"x": float("nan")}}, InvalidCaseMetadataError),
]


@pytest.mark.parametrize(("change", "error"), BAD_CREATES)
async def test_bad_create_raises_and_writes_nothing(botdata_db, change, error):
    await botdata_db.case_types.create(GUILD, "timed", display_name="Timed", requires_duration=True)
    await botdata_db.case_types.create(GUILD, "plain", display_name="Plain")
    args = {
        "guild_id": GUILD,
        "user_id": USER,
        "moderator_id": MOD,
        "case_type": CaseType.WARN,
        "reason": "r",
    } | change
    before = await snapshot()
    with pytest.raises(error):
        await botdata_db.cases.create(**args)
    assert await snapshot() == before


async def test_bad_create_on_a_new_guild_makes_no_guild_row(botdata_db):
    with pytest.raises(DurationRequiredError):
        await botdata_db.cases.create(GUILD, USER, MOD, CaseType.TEMPBAN, "no duration")
    with pytest.raises(CaseTypeNotFoundError):
        await botdata_db.cases.create(GUILD, USER, MOD, "mute", "no such type")
    assert await snapshot() == {key: [] for key in await snapshot()}


async def test_create_returns_the_case_as_stored(botdata_db):
    await botdata_db.case_types.create(GUILD, "mute", display_name="Mute", requires_duration=True)
    made = [
        await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "plain"),
        await botdata_db.cases.create(
            GUILD,
            USER,
            MOD,
            "mute",
            "loud",
            duration=HOUR,
            user_roles=[400_000_000_000_000_001],
            metadata={"nested": {"list": [1, 2]}, "flag": True},
        ),
    ]
    for case in made:
        assert case == await botdata_db.cases.get(GUILD, case.number)
        for stamp in (case.created_at, case.updated_at, case.expires_at):
            assert stamp is None or stamp.utcoffset() == timedelta(0)
        assert case.created_at == case.updated_at
    assert made[0].type is CaseType.WARN
    assert (made[0].user_roles, made[0].metadata) == ([], None)
    assert made[1].user_roles == [400_000_000_000_000_001]
    assert made[1].metadata == {"nested": {"list": [1, 2]}, "flag": True}
    assert (await Guild.get(id=GUILD)).updated_at == made[1].created_at


async def test_a_type_deleted_meanwhile_on_a_new_guild_writes_nothing(botdata_db, monkeypatch):
    # The guild has no row yet: the failed create must not leave one behind either.
    gone = await botdata_db.case_types.create(OTHER_GUILD, "gone", display_name="Gone")
    await botdata_db.case_types.delete(OTHER_GUILD, "gone")

    async def stale_get(guild_id: int, name: str):
        return gone

    monkeypatch.setattr(botdata_db.case_types, "get", stale_get)
    before = await snapshot()
    with pytest.raises(CaseTypeNotFoundError):
        await botdata_db.cases.create(GUILD, USER, MOD, "gone", "never stored")
    assert await snapshot() == before
    assert not await Guild.exists(id=GUILD)
    monkeypatch.undo()
    assert (await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "first")).number == 1


async def test_concurrent_cases_and_notes_on_a_new_guild_number_apart(botdata_db):
    made = await asyncio.gather(
        *(botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, f"c{i}") for i in range(30)),
        *(botdata_db.notes.add(GUILD, USER, MOD, f"n{i}") for i in range(30)),
    )
    cases, notes = made[:30], made[30:]
    assert sorted(case.number for case in cases) == list(range(1, 31))
    assert sorted(note.number for note in notes) == list(range(1, 31))
    guild = await Guild.get(id=GUILD)
    assert (guild.case_count, guild.note_count) == (30, 30)


# Reading -----------------------------------------------------------------------------------------


async def test_get_missing_or_bad_number(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "r")
    with pytest.raises(CaseNotFoundError):
        await botdata_db.cases.get(GUILD, 2)
    with pytest.raises(CaseNotFoundError):
        await botdata_db.cases.get(OTHER_GUILD, 1)
    with pytest.raises(InvalidNumberError):
        await botdata_db.cases.get(GUILD, 0)
    with pytest.raises(InvalidNumberError):
        await botdata_db.cases.get(GUILD, "1")
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.cases.get(1, 1)


async def test_for_user_newest_first_with_keyset_pages(botdata_db):
    for i in range(5):
        await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, f"u{i}")
        await botdata_db.cases.create(GUILD, OTHER_USER, MOD, CaseType.WARN, f"o{i}")
    await botdata_db.cases.create(OTHER_GUILD, USER, MOD, CaseType.WARN, "elsewhere")
    first = await botdata_db.cases.for_user(GUILD, USER, limit=3)
    assert [c.number for c in first] == [9, 7, 5]
    rest = await botdata_db.cases.for_user(GUILD, USER, limit=3, before=first[-1].number)
    assert [c.number for c in rest] == [3, 1]
    assert [c.reason for c in rest] == ["u1", "u0"]
    assert await botdata_db.cases.for_user(GUILD, USER, limit=3, before=1) == []
    assert await botdata_db.cases.for_user(GUILD, 200_000_000_000_000_099) == []


async def test_for_user_pages_past_the_cached_cases(botdata_db):
    await asyncio.gather(
        *(botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "r") for _ in range(130))
    )
    numbers: list[int] = []
    before = None
    while page := await botdata_db.cases.for_user(GUILD, USER, limit=40, before=before):
        numbers += [c.number for c in page]
        before = page[-1].number
    assert numbers == list(range(130, 0, -1))


@pytest.mark.parametrize(
    ("limit", "before"), [(0, None), (101, None), ("5", None), (True, None), (5, 0), (5, "3")]
)
async def test_bad_page_raises(botdata_db, limit, before):
    with pytest.raises(InvalidPageError):
        await botdata_db.cases.for_user(GUILD, USER, limit=limit, before=before)
    with pytest.raises(InvalidPageError):
        await botdata_db.cases.search(GUILD, limit=limit, before=before)


async def test_for_user_is_cached_and_create_edit_void_invalidate(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "first")
    assert [c.number for c in await botdata_db.cases.for_user(GUILD, USER)] == [1]
    # A row written behind the manager's back is not seen: the list comes from the cache.
    await Case.create(
        guild_id=GUILD, number=50, type=CaseType.WARN, reason="h", user_id=USER, moderator_id=MOD
    )
    assert [c.number for c in await botdata_db.cases.for_user(GUILD, USER)] == [1]

    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.KICK, "second")
    assert [c.number for c in await botdata_db.cases.for_user(GUILD, USER)] == [50, 2, 1]

    await Case.filter(number=50).delete()
    await botdata_db.cases.edit(GUILD, 1, reason="edited", editor_id=OTHER_MOD)
    cases = await botdata_db.cases.for_user(GUILD, USER)
    assert [(c.number, c.reason) for c in cases] == [(2, "second"), (1, "edited")]

    await botdata_db.cases.void(GUILD, 2, by=OTHER_MOD, reason="mistake")
    assert [c.active for c in await botdata_db.cases.for_user(GUILD, USER)] == [False, True]


async def test_warm_for_user_is_served_from_the_hot_layer(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "first")
    first = await botdata_db.cases.for_user(GUILD, USER)
    key = botdata_db.cache.key(USER_CASES_KEY, USER, guild_id=GUILD)
    assert [c.number for c in botdata_db.cache.hot_get(key)] == [1]
    # Gone from the shared cache and changed in the database behind the manager's back: the
    # hot layer still answers, with the very same objects.
    await botdata_db.cache.delete(key)
    await Case.filter(guild_id=GUILD, number=1).update(reason="changed")
    warm = await botdata_db.cases.for_user(GUILD, USER)
    assert warm == first
    assert warm[0] is first[0]
    assert warm is not botdata_db.cache.hot_get(key)  # callers get their own list


async def test_own_writes_are_seen_at_once_despite_concurrent_readers(botdata_db):
    stop = asyncio.Event()

    async def reader() -> None:
        # Readers keep a read in flight most of the time, as a busy guild's would. (A reader
        # that never waits turns into a busy loop of hot-layer hits that starves the database
        # driver's thread of the GIL: that measures the interpreter, not the cache.)
        while not stop.is_set():
            await botdata_db.cases.for_user(GUILD, USER)
            await asyncio.sleep(0.001)

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        for i in range(1, 31):
            case = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, f"r{i}")
            assert (await botdata_db.cases.for_user(GUILD, USER))[0] == case
            edited = await botdata_db.cases.edit(GUILD, i, reason=f"e{i}", editor_id=MOD)
            assert (await botdata_db.cases.for_user(GUILD, USER))[0] == edited
        voided = await botdata_db.cases.void(GUILD, 30, by=MOD, reason="undo")
        assert (await botdata_db.cases.for_user(GUILD, USER))[0] == voided
    finally:
        stop.set()
        await asyncio.gather(*readers)


async def test_search_filters_with_keyset_pages(botdata_db):
    await botdata_db.case_types.create(GUILD, "mute", display_name="Mute")
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "1")
    await botdata_db.cases.create(GUILD, OTHER_USER, OTHER_MOD, CaseType.WARN, "2")
    await botdata_db.cases.create(GUILD, USER, OTHER_MOD, "mute", "3")
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.BAN, "4")
    await botdata_db.cases.create(OTHER_GUILD, USER, MOD, CaseType.WARN, "elsewhere")
    await botdata_db.cases.void(GUILD, 4, by=MOD, reason="oops")

    def numbers(cases):
        return [c.number for c in cases]

    assert numbers(await botdata_db.cases.search(GUILD)) == [4, 3, 2, 1]
    assert numbers(await botdata_db.cases.search(GUILD, user_id=USER)) == [4, 3, 1]
    assert numbers(await botdata_db.cases.search(GUILD, moderator_id=OTHER_MOD)) == [3, 2]
    assert numbers(await botdata_db.cases.search(GUILD, case_type=CaseType.WARN)) == [2, 1]
    assert numbers(await botdata_db.cases.search(GUILD, case_type="Mute")) == [3]
    assert numbers(await botdata_db.cases.search(GUILD, active=False)) == [4]
    assert numbers(await botdata_db.cases.search(GUILD, active=True, user_id=USER)) == [3, 1]
    assert numbers(await botdata_db.cases.search(GUILD, limit=2, before=4)) == [3, 2]
    with pytest.raises(CaseTypeNotFoundError):
        await botdata_db.cases.search(GUILD, case_type="nothing")
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.cases.search(GUILD, user_id=3)


# Editing and voiding -----------------------------------------------------------------------------


async def test_edit_keeps_a_history(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "original")
    assert await botdata_db.cases.history(GUILD, 1) == []
    edited = await botdata_db.cases.edit(GUILD, 1, reason="second", editor_id=OTHER_MOD)
    assert edited.reason == "second"
    assert edited.updated_at > edited.created_at
    await botdata_db.cases.edit(GUILD, 1, reason="third", editor_id=MOD)
    unchanged = await botdata_db.cases.edit(GUILD, 1, reason="third", editor_id=MOD)
    assert unchanged.reason == "third"
    history = await botdata_db.cases.history(GUILD, 1)
    assert [(h.editor_id, h.old_reason, h.new_reason) for h in history] == [
        (OTHER_MOD, "original", "second"),
        (MOD, "second", "third"),
    ]
    assert all(h.case_id == edited.id for h in history)
    assert (await botdata_db.cases.get(GUILD, 1)).reason == "third"
    assert (await Case.get(id=edited.id)).updated_by == MOD


async def test_concurrent_edits_chain_in_the_history(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "r0")
    await asyncio.gather(
        *(botdata_db.cases.edit(GUILD, 1, reason=f"r{i}", editor_id=MOD) for i in range(1, 11))
    )
    history = await botdata_db.cases.history(GUILD, 1)
    assert len(history) == 10
    assert history[0].old_reason == "r0"
    for earlier, later_edit in itertools.pairwise(history):
        assert later_edit.old_reason == earlier.new_reason
    assert (await botdata_db.cases.get(GUILD, 1)).reason == history[-1].new_reason


async def test_bad_edit_raises_and_writes_nothing(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "original")
    before = await snapshot()
    with pytest.raises(ReasonTooLongError):
        await botdata_db.cases.edit(GUILD, 1, reason="x" * 2001, editor_id=MOD)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.cases.edit(GUILD, 1, reason="new", editor_id=12)
    with pytest.raises(CaseNotFoundError):
        await botdata_db.cases.edit(GUILD, 2, reason="new", editor_id=MOD)
    with pytest.raises(CaseNotFoundError):
        await botdata_db.cases.history(GUILD, 2)
    assert await snapshot() == before


async def test_void_keeps_the_case_once(botdata_db):
    case = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.BAN, "raid")
    voided = await botdata_db.cases.void(GUILD, 1, by=OTHER_MOD, reason="wrong member")
    assert voided.id == case.id
    assert not voided.active
    assert voided.voided_by == OTHER_MOD
    assert voided.void_reason == "wrong member"
    assert voided.voided_at is not None
    assert voided.reason == "raid"
    assert await botdata_db.cases.get(GUILD, 1) == voided
    before = await snapshot()
    with pytest.raises(CaseAlreadyVoidedError):
        await botdata_db.cases.void(GUILD, 1, by=MOD, reason="again")
    with pytest.raises(CaseNotFoundError):
        await botdata_db.cases.void(GUILD, 2, by=MOD, reason="none")
    with pytest.raises(ReasonTooLongError):
        await botdata_db.cases.void(GUILD, 1, by=MOD, reason="x" * 2001)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.cases.void(GUILD, 1, by=0, reason="bad id")
    assert await snapshot() == before


# Expiry ------------------------------------------------------------------------------------------


async def test_claim_due_hands_out_expired_cases_once(botdata_db):
    await botdata_db.case_types.create(GUILD, "mute", display_name="Mute", requires_duration=True)
    tempban = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.TEMPBAN, "t", duration=HOUR)
    timeout = await botdata_db.cases.create(
        GUILD, USER, MOD, CaseType.TIMEOUT, "t", duration=2 * HOUR
    )
    jail = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.JAIL, "t", duration=3 * HOUR)
    mute = await botdata_db.cases.create(GUILD, USER, MOD, "mute", "t", duration=4 * HOUR)
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.JAIL, "open-ended")
    await botdata_db.cases.create(
        GUILD, USER, MOD, CaseType.TEMPBAN, "later", duration=timedelta(days=9)
    )
    voided = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.TIMEOUT, "v", duration=HOUR)
    await botdata_db.cases.void(GUILD, voided.number, by=MOD, reason="undo")

    now = later(timedelta(days=1))
    assert await botdata_db.cases.claim_due(now - timedelta(days=1)) == []
    claimed = await botdata_db.cases.claim_due(now, limit=3)
    assert [c.id for c in claimed] == [tempban.id, timeout.id, jail.id]
    assert [c.id for c in await botdata_db.cases.claim_due(now)] == [mute.id]
    assert await botdata_db.cases.claim_due(now) == []
    row = await Case.get(id=tempban.id)
    assert row.expiry_claimed_until == now + timedelta(minutes=5)
    assert row.updated_at == tempban.updated_at


async def test_complete_release_and_lease_expiry(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.TEMPBAN, "a", duration=HOUR)
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.TEMPBAN, "b", duration=HOUR)
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "no expiry")
    now = later()
    assert [c.number for c in await botdata_db.cases.claim_due(now, lease=HOUR)] == [1, 2]

    assert await botdata_db.cases.complete_expiry(GUILD, 1) is True
    assert await botdata_db.cases.complete_expiry(GUILD, 1) is False
    assert (await Case.get(guild_id=GUILD, number=1)).expiry_handled_at is not None
    assert await botdata_db.cases.release(GUILD, 2) is True
    assert await botdata_db.cases.release(GUILD, 2) is False
    # Released: claimed again at once; handled: never again.
    assert [c.number for c in await botdata_db.cases.claim_due(now, lease=HOUR)] == [2]
    assert await botdata_db.cases.claim_due(now + timedelta(minutes=59)) == []
    # The lease ran out (the claimer died): the case is handed out again.
    assert [c.number for c in await botdata_db.cases.claim_due(now + HOUR)] == [2]
    assert await botdata_db.cases.release(GUILD, 1) is False  # handled
    assert await botdata_db.cases.complete_expiry(GUILD, 3) is False  # does not expire
    with pytest.raises(CaseNotFoundError):
        await botdata_db.cases.complete_expiry(GUILD, 4)
    with pytest.raises(CaseNotFoundError):
        await botdata_db.cases.release(GUILD, 4)


async def test_bad_claim_arguments(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.TEMPBAN, "a", duration=HOUR)
    before = await snapshot()
    with pytest.raises(InvalidExpiryError):
        await botdata_db.cases.claim_due(datetime(2100, 1, 1))
    with pytest.raises(InvalidExpiryError):
        await botdata_db.cases.claim_due(later(), lease=timedelta(0))
    with pytest.raises(InvalidPageError):
        await botdata_db.cases.claim_due(later(), limit=0)
    assert await snapshot() == before


async def test_concurrent_claimers_never_share_a_case(botdata_db):
    await asyncio.gather(
        *(
            botdata_db.cases.create(GUILD, USER, MOD, CaseType.TIMEOUT, f"{i}", duration=HOUR)
            for i in range(40)
        )
    )
    now = later()
    batches = await asyncio.gather(*(botdata_db.cases.claim_due(now, limit=3) for _ in range(20)))
    ids = [case.id for batch in batches for case in batch]
    assert len(ids) == len(set(ids)) == 40
    assert all(len(batch) <= 3 for batch in batches)


# Member status -----------------------------------------------------------------------------------


async def test_is_jailed_follows_the_latest_active_jail_case(botdata_db):
    assert not await botdata_db.cases.is_jailed(GUILD, USER)
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.JAIL, "jailed")
    assert await botdata_db.cases.is_jailed(GUILD, USER)
    assert not await botdata_db.cases.is_jailed(GUILD, OTHER_USER)
    assert not await botdata_db.cases.is_jailed(OTHER_GUILD, USER)
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "unrelated")
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.POLLUNBAN, "unrelated")
    assert await botdata_db.cases.is_jailed(GUILD, USER)
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.UNJAIL, "free")
    assert not await botdata_db.cases.is_jailed(GUILD, USER)
    rejail = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.JAIL, "again")
    assert await botdata_db.cases.is_jailed(GUILD, USER)
    await botdata_db.cases.void(GUILD, rejail.number, by=MOD, reason="mistake")
    assert not await botdata_db.cases.is_jailed(GUILD, USER)


async def test_a_timed_jail_ends_when_its_expiry_is_handled(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.JAIL, "timed", duration=HOUR)
    [claimed] = await botdata_db.cases.claim_due(later())
    assert await botdata_db.cases.is_jailed(GUILD, USER)  # expired but not lifted yet
    await botdata_db.cases.complete_expiry(GUILD, claimed.number)
    assert not await botdata_db.cases.is_jailed(GUILD, USER)


async def test_snippet_and_poll_bans_are_separate_pairs(botdata_db):
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.SNIPPETBAN, "s")
    assert await botdata_db.cases.is_snippet_banned(GUILD, USER)
    assert not await botdata_db.cases.is_poll_banned(GUILD, USER)
    assert not await botdata_db.cases.is_jailed(GUILD, USER)
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.POLLBAN, "p")
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.UNJAIL, "unrelated")
    assert await botdata_db.cases.is_snippet_banned(GUILD, USER)
    assert await botdata_db.cases.is_poll_banned(GUILD, USER)
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.SNIPPETUNBAN, "s")
    assert not await botdata_db.cases.is_snippet_banned(GUILD, USER)
    assert await botdata_db.cases.is_poll_banned(GUILD, USER)
    unban = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.POLLUNBAN, "p")
    assert not await botdata_db.cases.is_poll_banned(GUILD, USER)
    await botdata_db.cases.void(GUILD, unban.number, by=MOD, reason="unban was a mistake")
    assert await botdata_db.cases.is_poll_banned(GUILD, USER)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.cases.is_poll_banned(GUILD, 7)
