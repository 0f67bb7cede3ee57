"""The XP curve and the per-guild level settings: pure functions, no database.

The curve (MEE6's): going from level ``L`` to ``L + 1`` takes :func:`xp_to_next_level` XP,
``5L² + 50L + 100``. That is the one formula; everything else derives from it:
:func:`level_threshold` is the total XP of a level (the sum of the steps below it, scaled by
the guild's curve multiplier) and :func:`level_for_xp` inverts it.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from botdata.models.base import MAX_SNOWFLAKE, MIN_SNOWFLAKE

#: Largest XP total: scores in a Redis sorted set are doubles, exact up to 2**53.
MAX_XP: Final = 2**53 - 1

Snowflake = Annotated[int, Field(ge=MIN_SNOWFLAKE, le=MAX_SNOWFLAKE)]


def xp_to_next_level(level: int) -> int:
    """XP needed to go from ``level`` to ``level + 1`` on the default curve: 5L² + 50L + 100."""
    return 5 * level * level + 50 * level + 100


def _base_threshold(level: int) -> int:
    """``sum(xp_to_next_level(l) for l in range(level))`` in closed form
    (5·(L-1)L(2L-1)/6 + 50·L(L-1)/2 + 100·L); a test checks it against the sum."""
    return 5 * (level - 1) * level * (2 * level - 1) // 6 + 25 * level * (level - 1) + 100 * level


def level_threshold(level: int, multiplier: float = 1.0) -> int:
    """Total XP at which ``level`` is reached: the default curve's total scaled by
    ``multiplier`` (rounded). Strictly increasing in ``level`` for any multiplier >= 0.1."""
    return round(_base_threshold(level) * multiplier)


def level_for_xp(xp: int, multiplier: float = 1.0) -> int:
    """The level a total of ``xp`` reaches: the largest ``L`` with
    ``level_threshold(L, multiplier) <= xp`` (0 for xp below the first step)."""
    high = 1
    while level_threshold(high, multiplier) <= xp:
        high *= 2
    low = high // 2  # threshold(low) <= xp < threshold(high) (low 0 reaches at 0 XP)
    while high - low > 1:
        middle = (low + high) // 2
        if level_threshold(middle, multiplier) <= xp:
            low = middle
        else:
            high = middle
    return low


#: Highest level :meth:`~botdata.managers.levels.LevelManager.set_level` accepts: its threshold
#: stays within :data:`MAX_XP` even at the largest curve multiplier.
MAX_LEVEL: Final = level_for_xp(MAX_XP, 10.0)


class LevelSettings(BaseModel):
    """A guild's levelling configuration, stored as the dynamic setting ``levels.settings``.

    Defaults follow MEE6: 15-25 XP per message, one rewarded message a minute.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: XP of a message is drawn uniformly from ``xp_min..xp_max`` (then role multiplied).
    xp_min: int = Field(default=15, ge=0, le=10_000)
    xp_max: int = Field(default=25, ge=0, le=10_000)
    #: Seconds after a rewarded message during which the member's messages earn nothing
    #: (0: every message earns XP).
    cooldown: float = Field(default=60.0, ge=0, le=86_400)
    #: Scales the XP every level needs (2.0: twice as slow).
    curve_multiplier: float = Field(default=1.0, ge=0.1, le=10.0)
    #: Messages in these channels earn nothing.
    no_xp_channel_ids: frozenset[Snowflake] = frozenset()
    #: Members with any of these roles earn nothing.
    no_xp_role_ids: frozenset[Snowflake] = frozenset()
    #: Role id -> XP multiplier; a member with several gets the highest.
    role_multipliers: dict[Snowflake, Annotated[float, Field(ge=0, le=10)]] = Field(
        default_factory=dict
    )
    #: Level -> role id given on reaching it.
    role_rewards: dict[Annotated[int, Field(ge=1)], Snowflake] = Field(default_factory=dict)
    #: True: a member keeps every reward role reached; False: only the highest one.
    stack_rewards: bool = True
    #: Channel for level-up messages (None: the channel of the message that levelled up).
    level_up_channel_id: Snowflake | None = None

    @model_validator(mode="after")
    def _range(self) -> LevelSettings:
        if self.xp_min > self.xp_max:
            raise ValueError(f"xp_min ({self.xp_min}) is above xp_max ({self.xp_max})")
        return self

    def multiplier_for(self, role_ids: frozenset[int] | set[int] | tuple[int, ...]) -> float:
        """The XP multiplier of a member with ``role_ids``: the highest of their roles' (1.0
        when none of them has one)."""
        found = [self.role_multipliers[r] for r in role_ids if r in self.role_multipliers]
        return max(found, default=1.0)

    def reward_changes(self, previous: int, level: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Reward roles to give and to take away after going from ``previous`` to ``level``.

        Stacking: give the rewards of every level in ``previous+1..level``, take nothing.
        Highest only: when a reward level was passed, give the reward of the highest one
        reached and take the rewards of the lower ones. Returns ``(give, take)``, in
        ascending level order; both empty when no reward level was passed.
        """
        passed = sorted(lvl for lvl in self.role_rewards if previous < lvl <= level)
        if not passed:
            return (), ()
        if self.stack_rewards:
            return tuple(self.role_rewards[lvl] for lvl in passed), ()
        top = passed[-1]
        below = sorted(lvl for lvl in self.role_rewards if lvl < top)
        return (self.role_rewards[top],), tuple(self.role_rewards[lvl] for lvl in below)


__all__ = [
    "MAX_LEVEL",
    "MAX_XP",
    "LevelSettings",
    "level_for_xp",
    "level_threshold",
    "xp_to_next_level",
]
