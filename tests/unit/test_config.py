"""app/config.py: litestar.toml decoded strictly, DROPSYNC_* overrides, one-line errors naming the source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings
from tests.support.servers import REPO


def write_toml(folder: Path, text: str) -> Path:
    path = folder / "dropsync.toml"
    path.write_text(text)
    return path


def config_error(path: Path, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def test_defaults_without_file_or_environment(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "missing.toml", {})
    assert settings == Settings()
    assert settings.database_url == "sqlite:///./dropsync.db"
    assert settings.broker_url == "memory://"
    assert settings.heartbeat_s == 15.0
    assert settings.allow_signup is True
    assert settings.auto_migrate is True
    assert settings.rate_limit is True
    assert settings.max_body_bytes == 1024 * 1024


def test_the_repository_litestar_toml_loads() -> None:
    settings = load_settings(REPO / "litestar.toml", {})
    assert settings.database_url == "sqlite:///./dropsync.db"
    assert settings.heartbeat_s == 15.0


def test_the_file_overrides_defaults(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'heartbeat_s = 5.0\nallow_signup = false\nbroker_url = "redis://h:6379/1"\n')
    settings = load_settings(path, {})
    assert settings.heartbeat_s == 5.0
    assert settings.allow_signup is False
    assert settings.broker_url == "redis://h:6379/1"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "heartbeat_s = 5.0\nallow_signup = true\nport = 9000\n")
    environ = {
        "DROPSYNC_HEARTBEAT_S": "2.5",
        "DROPSYNC_ALLOW_SIGNUP": "false",
        "DROPSYNC_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
        "DROPSYNC_RATE_LIMIT": "false",
        "OTHER": "ignored",
    }
    settings = load_settings(path, environ)
    assert settings.heartbeat_s == 2.5
    assert settings.allow_signup is False
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/test"
    assert settings.rate_limit is False
    assert settings.port == 9000  # not overridden: the file's value stays


def test_dropsync_config_chooses_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "heartbeat_s = 7.0\n")
    assert load_settings(environ={"DROPSYNC_CONFIG": str(path)}).heartbeat_s == 7.0


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "heartbeat_s = 5.0\nheartbeat_seconds = 5\n")
    message = config_error(path, {})
    assert "heartbeat_seconds" in message
    assert str(path) in message


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    message = config_error(write_toml(tmp_path, "heartbeat_s = [\n"), {})
    assert "TOML" in message


def test_bad_value_in_the_file_names_the_file_and_setting(tmp_path: Path) -> None:
    message = config_error(write_toml(tmp_path, 'heartbeat_s = "soon"\n'), {})
    assert str(tmp_path) in message
    assert "heartbeat_s" in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DROPSYNC_HEARTBEAT_S", "abc"),
        ("DROPSYNC_HEARTBEAT_S", "-1"),
        ("DROPSYNC_HEARTBEAT_S", "0"),
        ("DROPSYNC_HEARTBEAT_S", "nan"),
        ("DROPSYNC_DATABASE_URL", "mysql://x"),
        ("DROPSYNC_DATABASE_URL", "sqlite://"),
        ("DROPSYNC_DATABASE_URL", "sqlite:///:memory:"),
        ("DROPSYNC_BROKER_URL", "kafka://x"),
        ("DROPSYNC_ALLOW_SIGNUP", "maybe"),
        ("DROPSYNC_AUTO_MIGRATE", ""),
        ("DROPSYNC_DEMO", "yes please"),
        ("DROPSYNC_RATE_LIMIT", "2"),
        ("DROPSYNC_PORT", "70000"),
        ("DROPSYNC_TOKEN_TTL_S", "1.5"),
        ("DROPSYNC_LOG_LEVEL", "loud"),
    ],
)
def test_bad_environment_value_names_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    path = write_toml(tmp_path, "heartbeat_s = 5.0\n")
    message = config_error(path, {variable: value})
    assert variable in message


def test_a_good_file_does_not_hide_a_bad_variable(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'database_url = "sqlite:///./x.db"\n')
    message = config_error(path, {"DROPSYNC_DATABASE_URL": "mysql://x"})
    assert "DROPSYNC_DATABASE_URL" in message
    assert str(path) not in message


def test_infinite_heartbeat_is_refused(tmp_path: Path) -> None:
    config_error(tmp_path / "missing.toml", {"DROPSYNC_HEARTBEAT_S": "inf"})


def test_uvicorn_stops_with_one_line_naming_the_variable() -> None:
    env = {**os.environ, "DROPSYNC_HEARTBEAT_S": "abc", "DROPSYNC_DATABASE_URL": "sqlite:///./never-created.db"}
    env.pop("DROPSYNC_CONFIG", None)
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "0"]
    finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=30, check=False)
    stderr = finished.stderr.decode()
    assert finished.returncode != 0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "DROPSYNC_HEARTBEAT_S" in lines[0]
    assert not (REPO / "never-created.db").exists()


def test_a_misspelled_variable_is_refused_with_a_hint(tmp_path: Path) -> None:
    message = config_error(tmp_path / "missing.toml", {"DROPSYNC_HEARTBEAT": "5"})
    assert "DROPSYNC_HEARTBEAT" in message
    assert "did you mean DROPSYNC_HEARTBEAT_S" in message


def test_a_missing_config_file_named_by_the_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match="DROPSYNC_CONFIG"):
        load_settings(environ={"DROPSYNC_CONFIG": "/nonexistent/dropsync.toml"})
