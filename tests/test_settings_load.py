"""Settings: the embedded defaults, environment and file overrides, and refusals that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.config import ConfigError, load_settings


def test_defaults_are_the_embedded_config() -> None:
    settings = load_settings(None, {})
    # config/mailflow.toml's sqlite:///var/mailflow.db, read against the checkout (config/ beside var/)
    assert settings.database.url == f"sqlite:///{Path(settings.data_dir) / 'var' / 'mailflow.db'}"
    assert settings.data_dir == str(Path(settings.source).resolve().parent.parent)
    assert settings.smtp.mode == "capture"
    assert settings.mail.from_ == "港區通行證通用管理系統工作小組 <hep@twport.com.tw>"
    assert settings.mail.support_phone == "0809-088-568"


def test_environment_overrides_any_key() -> None:
    settings = load_settings(None, {"MAILFLOW_HTTP__PORT": "8081", "MAILFLOW_SMTP__STARTTLS": "true",
                                    "MAILFLOW_MAIL__FROM": "Ops <ops@example.com>"})
    assert settings.http.port == 8081
    assert settings.smtp.starttls is True
    assert settings.mail.from_ == "Ops <ops@example.com>"


def test_config_file_from_flag_and_env(tmp_path: Path) -> None:
    file = tmp_path / "x.toml"
    file.write_text('[http]\nport = 9001\n[database]\nurl = "sqlite:///x.db"\n', encoding="utf-8")
    assert load_settings(str(file), {}).http.port == 9001
    assert load_settings(None, {"MAILFLOW_CONFIG": str(file)}).http.port == 9001
    # the environment wins over the file
    assert load_settings(str(file), {"MAILFLOW_HTTP__PORT": "9002"}).http.port == 9002


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"MAILFLOW_HTTP__PORT": "eighty"}, "http.port"),
        ({"MAILFLOW_HTTP__PORT": "70000"}, "http.port"),
        ({"MAILFLOW_SMTP__MODE": "carrier-pigeon"}, "smtp.mode"),
        ({"MAILFLOW_SMTP__MODE": "relay", "MAILFLOW_SMTP__PORT": "25"}, "security.secret_key"),
        ({"MAILFLOW_DATABASE__URL": "mysql://x"}, "database.url"),
        ({"MAILFLOW_MAIL__FROM": "not an address"}, "mail.from"),
        ({"MAILFLOW_NOPE__KEY": "1"}, "nope.key"),
        ({"MAILFLOW_HTTP__NOPE": "1"}, "http.nope"),
        ({"MAILFLOW_SMTP__STARTTLS": "maybe"}, "smtp.starttls"),
    ],
)
def test_bad_values_are_refused_naming_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, env)
    assert str(err.value).startswith(key)


def test_bad_config_stops_the_command_with_one_line(tmp_path: Path) -> None:
    env = {"MAILFLOW_HTTP__PORT": "x", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "mailflow", "init"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    expected = "mailflow: configuration error: http.port: expected an integer, got 'x'"
    assert result.stderr.strip().splitlines() == [expected]
