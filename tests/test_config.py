"""Configuration: settings.toml + environment, secrets only from the environment, all problems
listed at once."""

import os
import tomllib
from pathlib import Path

import pytest

from bot.config import FIELDS, SECRET_NAMES, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_from_settings_file() -> None:
    """The shipped settings.toml plus a token gives the documented defaults."""
    config = load_config({"YC_SETTINGS": str(ROOT / "settings.toml"), "BOT_TOKEN": "sekrit-token"})
    assert config.caldav_url == "https://caldav.yandex.ru/"
    assert config.database_url == "sqlite:///data/bot.db"
    assert config.poll_seconds == 60
    assert config.default_timezone == "Europe/Moscow"
    assert config.secret_key is None
    assert (config.horizon_days, config.actions_url, config.actions_port) == (60, "", 8579)
    assert (config.log_format, config.old_secret_keys) == ("text", ())
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


def _env(**extra: str) -> dict[str, str]:
    return {"YC_SETTINGS": os.devnull, "MATTERMOST_URL": "http://h", "BOT_TOKEN": "t",
            **extra}


def test_defaults_without_a_settings_file() -> None:
    """The built-in defaults equal what settings.toml documents for the new settings."""
    config = load_config(_env())
    assert (config.horizon_days, config.actions_url, config.actions_port) == (60, "", 8579)
    assert (config.log_format, config.old_secret_keys) == ("text", ())


def test_settings_file_documents_every_non_secret_setting() -> None:
    """settings.toml names each non-secret setting with its built-in default, and no secret."""
    shipped = tomllib.loads((ROOT / "settings.toml").read_text(encoding="utf-8"))
    for name in ("YC_HORIZON_DAYS", "YC_ACTIONS_URL", "YC_ACTIONS_PORT", "YC_LOG_FORMAT"):
        assert shipped[name] == FIELDS[name][1], name
    assert not set(SECRET_NAMES) & set(shipped)


def test_new_settings_from_the_environment() -> None:
    """Horizon, actions URL (trailing slash stripped), port and log format are read and typed."""
    config = load_config(_env(YC_HORIZON_DAYS="30", YC_ACTIONS_URL="http://calendar-bot:8579/",
                              YC_ACTIONS_PORT="9000", YC_LOG_FORMAT="JSON"))
    assert config.horizon_days == 30
    assert config.actions_url == "http://calendar-bot:8579"
    assert config.actions_port == 9000
    assert config.log_format == "json"


@pytest.mark.parametrize("url", ["https://bot.example.com/mm", "http://10.0.0.5:8579"])
def test_actions_url_accepted(url: str) -> None:
    """An http(s) URL with a host, with or without a path and port, is kept as given."""
    assert load_config(_env(YC_ACTIONS_URL=url)).actions_url == url


@pytest.mark.parametrize("url", ["calendar-bot:8579", "ftp://bot", "http://", "http://bot/?a=1",
                                 "http://bot/#x", "http://bot:99999", "http://bot/?"])
def test_actions_url_refused(url: str) -> None:
    """No scheme, another scheme, no host, a query, a fragment or a bad port: a problem."""
    with pytest.raises(ConfigError) as info:
        load_config(_env(YC_ACTIONS_URL=url))
    assert [p for p in info.value.problems if p.startswith("YC_ACTIONS_URL")]


def test_new_settings_problems_listed_at_once() -> None:
    """Bad horizon, port, log format and old keys without a key: every one reported together."""
    with pytest.raises(ConfigError) as info:
        load_config(_env(YC_HORIZON_DAYS="0", YC_ACTIONS_PORT="70000", YC_LOG_FORMAT="xml",
                         YC_ACTIONS_URL="bot", YC_OLD_SECRET_KEYS="old-one"))
    names = {p.split(":")[0] for p in info.value.problems}
    assert names == {"YC_HORIZON_DAYS", "YC_ACTIONS_PORT", "YC_LOG_FORMAT", "YC_ACTIONS_URL",
                     "YC_OLD_SECRET_KEYS"}
    assert "old-one" not in str(info.value)


@pytest.mark.parametrize(("name", "raw"), [("YC_HORIZON_DAYS", "367"), ("YC_HORIZON_DAYS", "soon"),
                                           ("YC_ACTIONS_PORT", "0"), ("YC_ACTIONS_PORT", "http")])
def test_out_of_range_numbers(name: str, raw: str) -> None:
    """Horizon outside 1…366 and a port outside 1…65535 (or not a number) are refused."""
    with pytest.raises(ConfigError) as info:
        load_config(_env(**{name: raw}))
    assert [p for p in info.value.problems if p.startswith(name)]


def test_horizon_bounds_accepted() -> None:
    """1 and 366 days are both allowed."""
    assert load_config(_env(YC_HORIZON_DAYS="1")).horizon_days == 1
    assert load_config(_env(YC_HORIZON_DAYS="366")).horizon_days == 366


def test_old_secret_keys_parsed_and_hidden() -> None:
    """Comma-separated, stripped, empty entries dropped; never in repr."""
    config = load_config(_env(YC_SECRET_KEY="new-key", YC_OLD_SECRET_KEYS=" old-1 ,, old-2 ,"))
    assert config.old_secret_keys == ("old-1", "old-2")
    assert "old-1" not in repr(config)
    assert "new-key" not in repr(config)


def test_old_secret_keys_from_file(tmp_path: Path) -> None:
    """YC_OLD_SECRET_KEYS_FILE names a file of keys (commas or one per line)."""
    (tmp_path / "old").write_text("old-1\nold-2, old-3\n")
    config = load_config(_env(YC_SECRET_KEY="new", YC_OLD_SECRET_KEYS_FILE=str(tmp_path / "old")))
    assert config.old_secret_keys == ("old-1", "old-2", "old-3")


def test_old_secret_keys_never_from_settings_file(tmp_path: Path) -> None:
    """Old keys are a secret: in settings.toml they are a problem, and the value is not shown."""
    settings = tmp_path / "s.toml"
    settings.write_text('YC_OLD_SECRET_KEYS = "leaked-old"\n')
    with pytest.raises(ConfigError) as info:
        load_config(_env(YC_SETTINGS=str(settings), YC_SECRET_KEY="k"))
    assert any(p.startswith("YC_OLD_SECRET_KEYS: secrets") for p in info.value.problems)
    assert "leaked-old" not in str(info.value)


def test_old_secret_keys_need_a_secret_key() -> None:
    """Old keys alone (the new key missing) are an error, not a silent no-op."""
    with pytest.raises(ConfigError) as info:
        load_config(_env(YC_OLD_SECRET_KEYS="old"))
    assert any(p.startswith("YC_OLD_SECRET_KEYS") for p in info.value.problems)


def test_repr_hides_the_database_password() -> None:
    """A password inside a PostgreSQL URL does not reach repr."""
    config = load_config(_env(YC_DATABASE_URL="postgresql://bot:pg-pass@db:5432/bot", YC_SECRET_KEY="k"))
    assert "pg-pass" not in repr(config)
    assert "bot:***@db:5432" in repr(config)


def test_broken_actions_url_is_a_problem_not_a_crash() -> None:
    """An unparseable URL (broken IPv6 host) is reported, and a password in it is not shown."""
    with pytest.raises(ConfigError) as info:
        load_config(_env(YC_ACTIONS_URL="http://u:hunter2@[::1"))
    assert any(p.startswith("YC_ACTIONS_URL") for p in info.value.problems)
    assert "hunter2" not in str(info.value)
