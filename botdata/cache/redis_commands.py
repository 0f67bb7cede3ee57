"""The Redis commands of :class:`~botdata.cache.redis.RedisCache` that are more than one call of
redis-py: its Lua scripts, how script calls are batched, big writes split, guild keys indexed.

Every script works on the key it is given and, for a key of a guild (``prefix:{g:<id>}:...``),
on that guild's index (``prefix:{g:<id>}``, a set of the guild's keys holding cached copies of
rows, in the same Redis Cluster slot thanks to the hash tag). The scripts that store such a
copy (a lease, a fill, a sorted set's expiry) add the key to the index and keep the index alive
as long as the key, in the same atomic step; :data:`DROP_INDEXED_SCRIPT` deletes what an index
lists, so a guild's keys are dropped without scanning the keyspace.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

#: Keys or members per command: big writes are split so that Redis answers each part quickly
#: (a 50,000-member ZADD alone can take longer than a short timeout).
BATCH: Final = 1000

#: Lua: ``index()`` adds KEYS[1] to the guild index KEYS[2] (when given) and makes the index
#: live at least as long as KEYS[1] (forever if KEYS[1] has no expiry).
_INDEX_LUA: Final = """
local function index()
    if #KEYS < 2 then return end
    local ms = redis.call('PTTL', KEYS[1])
    if ms == -2 then return end
    local left = redis.call('PTTL', KEYS[2])
    redis.call('SADD', KEYS[2], KEYS[1])
    if ms == -1 then
        if left ~= -1 then redis.call('PERSIST', KEYS[2]) end
    elseif left == -2 or (left >= 0 and left < ms) then
        redis.call('PEXPIRE', KEYS[2], ms)
    end
end
"""
#: Index KEYS[1] in KEYS[2] (after a write that was not a script).
INDEX_SCRIPT: Final = _INDEX_LUA + "index()\nreturn 1\n"
#: Claim a key (``SET NX PX``); the remaining milliseconds (``PTTL``) when it is taken.
CLAIM_SCRIPT: Final = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return -3 end
return redis.call('PTTL', KEYS[1])
"""
#: ``CLAIM_SCRIPT``'s answer when it claimed the key.
CLAIMED: Final = -3
#: ``ZADD [GT] KEYS[1] score member...`` (then ``PEXPIRE`` unless ARGV[2] is 0) only when the
#: set exists and, unless ARGV[3] is empty, holds member ARGV[3] with score ARGV[4]. ARGV: 1 for
#: GT else 0, milliseconds or 0, guard member, guard score, then score, member pairs.
ZADD_EXISTING_SCRIPT: Final = (
    _INDEX_LUA
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' and tonumber(redis.call('ZSCORE', KEYS[1], ARGV[3])) ~= tonumber(ARGV[4]) then
    return 0
end
if ARGV[1] == '1' then
    redis.call('ZADD', KEYS[1], 'GT', unpack(ARGV, 5))
else
    redis.call('ZADD', KEYS[1], unpack(ARGV, 5))
end
if ARGV[2] ~= '0' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    index()
end
return 1
"""
)
#: ``GET``; when the key is missing, ``SET`` lease ARGV[1] for ARGV[2] milliseconds instead
#: (indexed). The value (or another reader's lease), or nil when the lease was stored.
GET_OR_LEASE_SCRIPT: Final = (
    _INDEX_LUA
    + """
local value = redis.call('GET', KEYS[1])
if value then return value end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
index()
return false
"""
)
#: ``SET`` ARGV[2] for ARGV[3] milliseconds only while the key holds lease ARGV[1] (indexed);
#: 1 if set.
FILL_SCRIPT: Final = (
    _INDEX_LUA
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
index()
return 1
"""
)
#: Take up to ARGV[1] keys out of index KEYS[1] and delete them (in KEYS[1]'s slot: the
#: guild's); the number taken. The index is gone once it answers less than ARGV[1].
DROP_INDEXED_SCRIPT: Final = """
local keys = redis.call('SPOP', KEYS[1], ARGV[1])
if #keys > 0 then redis.call('UNLINK', unpack(keys)) end
return #keys
"""

#: A script call: the script, its keys, its arguments.
Call = tuple[AsyncScript, Sequence[str], list[Any]]


def milliseconds(seconds: float) -> int:
    """``seconds`` as whole milliseconds for PX/PEXPIRE, at least 1."""
    return max(1, math.ceil(seconds * 1000))


async def in_batches(
    r: Redis, items: Sequence[str], queue: Callable[[Pipeline, Sequence[str]], object]
) -> None:
    """Queue ``queue(pipe, part)`` for each BATCH ``items`` and send them in one round trip."""
    async with r.pipeline(transaction=False) as pipe:
        for start in range(0, len(items), BATCH):
            queue(pipe, items[start : start + BATCH])
        await pipe.execute()


async def evaluate(r: Redis, calls: Sequence[Call]) -> list[Any]:
    """Run script ``calls`` in one pipeline (EVALSHA; scripts Redis lost, after a restart,
    are loaded and their calls run again). The answers, errors in place."""
    async with r.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
    missing = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
    for script in {calls[i][0] for i in missing}:
        script.sha = await r.script_load(script.script)
    for i in missing:
        script, keys, args = calls[i]
        try:
            answers[i] = await r.evalsha(script.sha, len(keys), *keys, *args)
        except redis_errors.ResponseError as exc:
            answers[i] = exc
    return answers


#: How a batch of script calls reaches Redis: ``run(op, default, items=...)`` (see
#: :meth:`botdata.cache.redis_link.RedisLink.run`).
Runner = Callable[..., Awaitable[Any]]


class ScriptBatches:
    """Script calls made during one turn of the event loop, sent together in one pipeline."""

    def __init__(self, run: Runner, failed: object) -> None:
        self._run = run
        #: What a call answers when Redis did not (unavailable or slow).
        self.failed = failed
        # Calls of this turn (with their size in items), waiting to be sent.
        self._queued: list[tuple[Call, int, asyncio.Future[Any]]] = []

    async def eval(
        self, script: AsyncScript, keys: Sequence[str], args: list[Any], *, items: int = 1
    ) -> Any:
        """``script`` on ``keys`` with ``args`` (``items``: its size, for the timeout): its
        answer, or :attr:`failed` (Redis unavailable or slow). Raises what the script raises
        (a key of another type).

        Sent in one pipeline with the other script calls made during this turn of the event
        loop (the first of them sends them all): under load, the claims, rank writes and
        cache reads of messages handled together share one round trip.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append(((script, keys, args), items, future))
        if len(self._queued) > 1:
            return await future  # the first call of this turn sends it
        queued: list[tuple[Call, int, asyncio.Future[Any]]] | None = None
        answers: list[Any] | None = None
        try:
            await asyncio.sleep(0)  # the other calls of this turn join
            queued, self._queued = self._queued, []
            calls = [call for call, _, _ in queued]
            size = sum(size for _, size, _ in queued)
            answers = await self._run(lambda r: evaluate(r, calls), None, items=size)
        finally:
            if queued is None:  # cancelled before sending: the others get a miss
                queued, self._queued = self._queued, []
            for index, (_, _, waiting) in enumerate(queued):
                answer = self.failed if answers is None else answers[index]
                if waiting.done():
                    pass
                elif isinstance(answer, Exception):
                    waiting.set_exception(answer)
                else:
                    waiting.set_result(answer)
        return future.result()
