"""Settings come from the environment and .env; a bad value names the variable."""

from __future__ import annotations

import pytest

from botdata.config import DEFAULT_DATABASE_URL, Settings, load_settings
from botdata.errors import ConfigurationError
from botdata.schema import normalise_url, redact_url


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
