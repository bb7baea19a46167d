"""The foundation: settings, schema, health."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from mailflow.config import ConfigError, load_settings
from mailflow.db import Database, init_schema, schema_is_current


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


def test_init_is_idempotent(db_url: str) -> None:
    db = Database(db_url)
    init_schema(db)
    init_schema(db)
    assert schema_is_current(db)
    tables = set(inspect(db.engine).get_table_names())
    assert {"accounts", "applications", "outbox", "inbound_messages", "support_items"} <= tables
    db.dispose()


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from mailflow.models import Base

    db = Database(db_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == [], "models changed without a migration: run scripts/regen_initial_migration.sh"


def test_healthz(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_503_when_the_database_is_gone(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from mailflow.context import AppContext
    from mailflow.web.app import create_app

    settings = load_settings(None, {"MAILFLOW_DATABASE__URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    ctx = AppContext.from_settings(settings)
    with TestClient(create_app(ctx)) as c:
        response = c.get("/healthz")
    assert response.status_code == 503


def test_unknown_api_routes_and_methods_answer_in_the_api_shape(client) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json() == {"error": "找不到此 API"}
    wrong = client.get("/api/applications")
    assert wrong.status_code == 405 and wrong.json() == {"error": "此 API 不接受這個 HTTP 方法"}
    assert "allow" in {k.lower() for k in wrong.headers}
    assert client.get("/no-such-page").status_code == 404  # pages keep FastAPI's own answer
