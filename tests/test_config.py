"""Configuration: settings.toml + environment, secrets only from the environment, all problems
listed at once."""

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_from_settings_file() -> None:
    """The shipped settings.toml plus a token gives the SPEC's defaults."""
    config = load_config({"YC_SETTINGS": str(ROOT / "settings.toml"), "BOT_TOKEN": "sekrit-token"})
    assert config.caldav_url == "https://caldav.yandex.ru/"
    assert config.database_url == "sqlite:///data/bot.db"
    assert config.poll_seconds == 60
    assert config.default_timezone == "Europe/Moscow"
    assert config.secret_key is None
    assert "sekrit" not in repr(config)


def test_environment_overrides_file(tmp_path: Path) -> None:
    """An environment variable wins over the file."""
    settings = tmp_path / "s.toml"
    settings.write_text('MATTERMOST_URL = "https://a.example"\nYC_POLL_SECONDS = 30\n')
    config = load_config({"YC_SETTINGS": str(settings), "BOT_TOKEN": "t",
                          "YC_POLL_SECONDS": "15", "SSL_VERIFY": "false"})
    assert config.poll_seconds == 15
    assert config.ssl_verify is False
    assert config.mattermost_url == "https://a.example"


def test_every_problem_listed_at_once(tmp_path: Path) -> None:
    """Missing token, bad URL, bad zone, bad number and a secret in the file: one error."""
    settings = tmp_path / "s.toml"
    settings.write_text('BOT_TOKEN = "leaked"\n')
    with pytest.raises(ConfigError) as info:
        load_config({"YC_SETTINGS": str(settings), "MATTERMOST_URL": "chat.example.com",
                     "YC_DEFAULT_TIMEZONE": "Mars/Base", "YC_POLL_SECONDS": "often",
                     "YC_DATABASE_URL": "mysql://x"})
    text = str(info.value)
    for name in ("BOT_TOKEN: secrets", "BOT_TOKEN: not set", "MATTERMOST_URL", "YC_DEFAULT_TIMEZONE",
                 "YC_POLL_SECONDS", "YC_DATABASE_URL"):
        assert name in text
    assert "leaked" not in text


def test_secret_from_named_file(tmp_path: Path) -> None:
    """BOT_TOKEN_FILE and YC_SECRET_KEY_FILE name files holding the secrets."""
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "key").write_text("k3y\n")
    (tmp_path / "empty.toml").write_text("")
    config = load_config({"YC_SETTINGS": str(tmp_path / "empty.toml"), "MATTERMOST_URL": "http://h",
                          "BOT_TOKEN_FILE": str(tmp_path / "token"),
                          "YC_SECRET_KEY_FILE": str(tmp_path / "key")})
    assert (config.bot_token, config.secret_key) == ("tok", "k3y")


def test_postgres_needs_a_secret_key() -> None:
    """There is no key file beside a PostgreSQL database."""
    with pytest.raises(ConfigError) as info:
        load_config({"YC_SETTINGS": "/nonexistent/x.toml", "MATTERMOST_URL": "http://h",
                     "BOT_TOKEN": "t", "YC_DATABASE_URL": "postgresql://u@h/db"})
    assert any("YC_SECRET_KEY" in p for p in info.value.problems)
