"""Settings as loaded (issue 16 item 7: no secret in repr, smtp.mode a Literal, frozen) and where the
commands find their data (issue 15 items 16 and 18): relative paths read against the configuration file's
folder, not the folder a command runs in; a command that finds no schema names the database it used
and creates nothing; `mailflow run` names a taken port before it prints its banner."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailflow.config import SmtpSettings, load_settings
from mailflow.context import AppContext
from mailflow.daemon import _banner
from tests.conftest import PG_ADMIN_URL

REPO = Path(__file__).resolve().parent.parent

SECRETS = {
    "MAILFLOW_SMTP__PASSWORD": "relay-pass-3141",
    "MAILFLOW_INBOUND__IMAP_PASSWORD": "imap-pass-2718",
    "MAILFLOW_SECURITY__SECRET_KEY": "a-secret-key-1618-0339887",
    "MAILFLOW_DATABASE__URL": "postgresql+psycopg://mailflow:db-pass-1414@db.example.tw/mailflow",
}


def test_repr_of_settings_shows_no_secret() -> None:
    settings = load_settings(None, {**SECRETS, "MAILFLOW_SMTP__USERNAME": "relay-user"})
    for shown in (repr(settings), str(settings), repr(settings.smtp), repr(settings.database)):
        for secret in ("relay-pass-3141", "imap-pass-2718", "a-secret-key-1618-0339887", "db-pass-1414"):
            assert secret not in shown
    assert "password='***'" in repr(settings.smtp) and "username='relay-user'" in repr(settings.smtp)
    assert "imap_password='***'" in repr(settings.inbound)  # set: '***'; unset: ''
    assert "imap_password=''" in repr(load_settings(None, {}).inbound)
    assert "mailflow:***@db.example.tw" in repr(settings.database)
    assert settings.smtp.password == "relay-pass-3141"  # hidden from repr, not from the program


def test_settings_are_frozen_after_load() -> None:
    settings = load_settings(None, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.smtp.port = 2525  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.http = settings.http  # type: ignore[misc]
    changed = settings.updated(smtp={"port": 2525})
    assert (changed.smtp.port, settings.smtp.port) == (2525, 0)


def test_smtp_mode_is_a_literal() -> None:
    hint = typing.get_type_hints(SmtpSettings)["mode"]
    assert typing.get_origin(hint) is typing.Literal and set(typing.get_args(hint)) == {"capture", "relay"}


def test_the_capture_port_lives_on_the_context(ctx: AppContext) -> None:
    from mailflow.mail.capture import start_capture_server

    server = start_capture_server(ctx)
    try:
        assert ctx.capture_port == server.port != 0 and ctx.settings.smtp.port == 0
    finally:
        server.stop()


# --- where the data is ---------------------------------------------------------------------------------


def instance(tmp_path: Path, body: str = "") -> Path:
    """An operator's folder laid out like this checkout: config/mailflow.toml beside var/."""
    config = tmp_path / "site" / "config" / "mailflow.toml"
    config.parent.mkdir(parents=True)
    config.write_text(body, encoding="utf-8")
    return config


def test_relative_paths_are_read_against_the_configuration_files_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    in_config = load_settings(str(instance(tmp_path)), {})  # the defaults, in a config/ folder
    assert in_config.database.url == f"sqlite:///{tmp_path}/site/var/mailflow.db"
    assert in_config.storage.documents_dir == f"{tmp_path}/site/var/documents"
    loose = tmp_path / "ops" / "mailflow.toml"
    loose.parent.mkdir()
    loose.write_text('[database]\nurl = "sqlite:///data/m.db"\n[storage]\ndocuments_dir = "uploads"\n'
                     '[mail]\ndkim_key = "keys/mf.pem"\ndkim_selector = "mf"\n')
    settings = load_settings(str(loose), {})
    assert settings.database.url == f"sqlite:///{tmp_path}/ops/data/m.db"
    assert settings.documents_path == tmp_path / "ops" / "uploads"
    assert settings.mail.dkim_key == f"{tmp_path}/ops/keys/mf.pem"
    assert in_config.mail.dkim_key == ""  # unset stays unset
    # Typed in the shell, a relative path means the shell's folder; absolute ones and servers stay.
    typed = load_settings(str(loose), {"MAILFLOW_DATABASE__URL": "sqlite:///here.db",
                                       "MAILFLOW_STORAGE__DOCUMENTS_DIR": "/srv/docs"})
    assert typed.database.url == f"sqlite:///{elsewhere}/here.db"
    assert typed.storage.documents_dir == "/srv/docs"
    assert load_settings(str(loose), SECRETS).database.url == SECRETS["MAILFLOW_DATABASE__URL"]


def test_without_a_file_the_data_lives_in_the_users_data_folder(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config/ here
    monkeypatch.setattr("mailflow.config.PROJECT_ROOT", tmp_path / "installed")  # nor beside the package
    settings = load_settings(None, {"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert settings.source == ""
    assert settings.database.url == f"sqlite:///{tmp_path}/xdg/mailflow/var/mailflow.db"
    assert settings.data_dir == str(tmp_path / "xdg" / "mailflow")


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    return subprocess.run([sys.executable, "-m", "mailflow", *args], capture_output=True, text=True,
                          cwd=cwd, env={**base, "PYTHONPATH": str(REPO), **(env or {})}, timeout=120)


def test_a_command_run_from_another_folder_uses_the_configured_database(tmp_path: Path) -> None:
    config = instance(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = cli(["--config", str(config), "review", "list"], elsewhere)
    database = tmp_path / "site" / "var" / "mailflow.db"
    # No schema yet: the command says which database it looked in, and creates nothing anywhere.
    assert listed.returncode == 1 and listed.stdout == ""
    assert f"no mailflow schema in sqlite:///{database}" in listed.stderr
    assert "mailflow init" in listed.stderr and len(listed.stderr.splitlines()) == 1
    assert not database.exists() and list(elsewhere.iterdir()) == []
    assert cli(["--config", str(config), "init"], elsewhere).returncode == 0
    assert database.exists() and list(elsewhere.iterdir()) == []
    again = cli(["--config", str(config), "review", "list"], elsewhere)
    assert again.returncode == 0 and again.stdout == "no applications waiting for review\n"


def test_a_schema_less_postgresql_database_is_named_too(tmp_path: Path, db_backend: str) -> None:
    if db_backend != "postgresql":
        pytest.skip("PostgreSQL pass")
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mf_empty_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        done = cli(["outbox", "list"], tmp_path, {"MAILFLOW_DATABASE__URL": url})
        assert done.returncode == 1 and f"no mailflow schema in {url}" in done.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_banner_names_the_database_and_the_documents_folder(ctx: AppContext,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _banner(ctx, "all", [])
    shown = capsys.readouterr().err
    assert f"database            {ctx.settings.database.url}" in shown
    assert f"documents folder    {ctx.settings.documents_path}" in shown


# --- ports ---------------------------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder.getsockname()[1]
    holder.close()


@pytest.mark.parametrize(("role", "key"), [("all", "http.port"), ("web", "http.port"),
                                           ("worker", "inbound.smtp_port"), ("all", "inbound.smtp_port"),
                                           ("worker", "smtp.port")])
def test_run_names_a_taken_port_before_its_banner(role: str, key: str, taken_port: int, tmp_path: Path,
                                                  db_url: str) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    other = free.getsockname()[1]
    free.close()
    env = {"MAILFLOW_DATABASE__URL": db_url, "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "docs"),
           "MAILFLOW_HTTP__PORT": str(other), "MAILFLOW_INBOUND__SMTP_PORT": "0"}
    env[{"http.port": "MAILFLOW_HTTP__PORT", "inbound.smtp_port": "MAILFLOW_INBOUND__SMTP_PORT",
         "smtp.port": "MAILFLOW_SMTP__PORT"}[key]] = str(taken_port)
    done = cli(["run", "--role", role], tmp_path, env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip() == (f"mailflow: configuration error: {key}: 127.0.0.1:{taken_port} is already "
                                   f"in use (another mailflow, or another program, listens there); stop it "
                                   f"or choose another {key}")
    assert "mailflow is running" not in done.stdout + done.stderr
