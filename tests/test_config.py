"""Settings come from the environment and .env; a bad value names the variable."""

from __future__ import annotations

import pytest

from botdata.config import DEFAULT_DATABASE_URL, Settings, load_settings
from botdata.errors import ConfigurationError
from botdata.schema import normalise_url, redact_url, tortoise_config


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.DATABASE_URL == DEFAULT_DATABASE_URL
    assert settings.REDIS_URL is None
    assert (settings.GUILD_CONFIG_TTL, settings.USER_CASES_TTL) == (3600, 1800)
    assert (settings.XP_LEADERBOARD_TTL, settings.WEB_SESSION_TTL) == (3600, 86400)
    assert (settings.COMMAND_RATE_LIMIT, settings.COMMAND_RATE_WINDOW) == (10, 60)
    assert settings.DATABASE_ECHO is False
    assert (settings.DATABASE_CONNECT_TIMEOUT, settings.DATABASE_POOL_TIMEOUT) == (5, 3)
    assert (settings.DATABASE_LOCK_TIMEOUT, settings.DATABASE_STATEMENT_TIMEOUT) == (3, 30)


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    (tmp_path / ".env").write_text("REDIS_URL=redis://127.0.0.1:6379/3\nUSER_CASES_TTL=5\n")
    monkeypatch.setenv("USER_CASES_TTL", "7")  # the environment wins over .env
    settings = load_settings()
    assert settings.REDIS_URL == "redis://127.0.0.1:6379/3"
    assert settings.USER_CASES_TTL == 7


def test_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMAND_RATE_LIMIT", "3")
    assert load_settings(COMMAND_RATE_LIMIT=4).COMMAND_RATE_LIMIT == 4


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GUILD_CONFIG_TTL", "soon"),
        ("WEB_SESSION_TTL", "-1"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://localhost"),
        ("COMMAND_RATE_LIMIT", "0"),
        ("DATABASE_ECHO", "perhaps"),
        ("DATABASE_CONNECT_TIMEOUT", "-1"),
        ("DATABASE_LOCK_TIMEOUT", "0"),
        ("DATABASE_STATEMENT_TIMEOUT", "nan"),
        ("DATABASE_POOL_TIMEOUT", "inf"),
        # Past what a timedelta, a Redis expiry or a pool can hold:
        ("WEB_SESSION_TTL", "1000000000000"),
        ("REMINDER_CLAIM_LEASE", "1e300"),
        ("HOT_CACHE_TTL", "inf"),
        ("REDIS_TIMEOUT", "1e12"),
        ("CACHE_MAX_ENTRIES", "99999999999999999999"),
        ("DATABASE_POOL_MAX", "1000000000"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        load_settings()


def test_pool_max_below_min_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_POOL_MIN", "5")
    monkeypatch.setenv("DATABASE_POOL_MAX", "2")
    with pytest.raises(ConfigurationError, match="DATABASE_POOL_MAX"):
        load_settings()


def test_urls_are_normalised_and_redacted() -> None:
    assert normalise_url("postgresql://u@h/d") == "postgres://u@h/d"
    shown = redact_url("postgres://bot:hunter2@db.example:5432/bot")
    assert "hunter2" not in shown
    assert shown == "postgres://bot:***@db.example:5432/bot"
    assert redact_url("sqlite://botdata.sqlite3") == "sqlite://botdata.sqlite3"
    # urllib refuses a password with "[" (an IPv6 bracket to it); botdata accepts and hides it.
    assert redact_url("postgres://bot:p[w]@db/bot") == "postgres://bot:***@db/bot"


@pytest.mark.parametrize(
    "url",
    [
        "postgres://bot:hunter2@db:notaport/bot",
        "postgres://bot:hunter2@db:0/bot",
        "postgres://bot:hunter2@db:65536/bot",
        "postgres://bot:hunter2@[::1/bot",
        "postgres://bot:hunter2@[::1]x/bot",
        "postgres://bot:hunter2@[db.example]/bot",
        "postgres://bot:hunter2@db example/bot",
        "postgres://bot:hunter2@db",  # no database
        "postgres://bot:hunter2@db/bot/extra",
        "postgres://bot:hun/ter2@db/bot",  # an unencoded "/" in the password
        "postgres://bot:hun#ter2@db/bot",
        "postgres://bot:hunter2@db/bot?maxsize=5",  # DATABASE_POOL_MAX does that
        "postgres://bot:hunter2@db/bot?ssl=perhaps",
        "postgres://bot:hunter2@db/bot?statement_cache_size=-1",
        "postgres://bot:hunter2@db/bot?junk",
        "mysql://bot:hunter2@db/bot",
        "sqlite://",
        "sqlite://?journal_mode=WAL",
        "sqlite://botdata.sqlite3?busy_timeout=1",  # DATABASE_LOCK_TIMEOUT does that
        "sqlite://botdata.sqlite3?journal_size_limit=big",
        "sqlite://botdata.sqlite3?journal_mode=WAL;DROP",
    ],
)
def test_a_malformed_database_url_names_the_variable_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigurationError, match="DATABASE_URL") as refused:
        load_settings()
    for secret in ("hunter2", "hun", "ter2"):
        assert secret not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://botdata.sqlite3",
        "sqlite:///var/lib/bot/botdata.sqlite3?synchronous=NORMAL",
        "sqlite://:memory:",
        "postgres://bot:p%2Fss@db.example:5432/bot",
        "postgresql://bot@10.0.0.2/bot?ssl=require",
        "postgres://bot:pw@[::1]:5432/bot",
        "postgres://bot:pw@[fe80::1%25eth0]/bot",
        "postgres:///bot?host=/run/postgresql",
        "postgres://bot:p[w]@db/bot?statement_cache_size=0&application_name=bot",
    ],
)
def test_a_good_database_url_is_accepted_and_configures_tortoise(url: str) -> None:
    settings = load_settings(DATABASE_URL=url)
    assert url == settings.DATABASE_URL
    connection = tortoise_config(settings)["connections"]["default"]
    assert connection["engine"].startswith("botdata.backends.")


def test_the_ssl_mode_reaches_asyncpg_as_written() -> None:
    def ssl(value: str) -> object:
        settings = load_settings(DATABASE_URL=f"postgres://bot@db/bot?ssl={value}")
        return tortoise_config(settings)["connections"]["default"]["credentials"]["ssl"]

    # Tortoise alone reads it as a bool: "disable" and "false" would both switch TLS on.
    assert ssl("disable") == "disable"
    assert ssl("verify-full") == "verify-full"
    assert ssl("false") is False
    assert ssl("true") is True
