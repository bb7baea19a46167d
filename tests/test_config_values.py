"""Bad values are refused at start with one line naming the key, through the real `mailflow` command:
every numeric key out of its range, a digest cron the scheduler cannot read, a database that does not
answer, a documents folder that cannot be written. Nothing starts, so nothing is changed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.cli import main
from mailflow.config import ConfigError, Settings, load_settings, numeric_keys
from mailflow.context import AppContext
from mailflow.mail.render import sample_context
from mailflow.models import OutboxMessage, OutboxStatus
from mailflow.timeutil import now

REPO = Path(__file__).resolve().parent.parent

# Each numeric key with values that must be refused: below (or at) its lower bound, above its upper one,
# and the words that float() would take.
BAD_NUMBERS = [
    ("http.port", "-1"), ("http.port", "65536"),
    ("smtp.port", "-1"), ("smtp.port", "70000"),
    ("smtp.timeout_seconds", "0"), ("smtp.timeout_seconds", "-5"), ("smtp.timeout_seconds", "inf"),
    ("inbound.smtp_port", "-1"), ("inbound.smtp_port", "65536"),
    ("inbound.max_message_bytes", "0"), ("inbound.max_message_bytes", "100"),
    ("inbound.imap_port", "0"), ("inbound.imap_port", "65536"),
    ("inbound.authserv_hops", "0"), ("inbound.authserv_hops", "21"),
    ("security.token_ttl_hours", "0"), ("security.token_ttl_hours", "-1"),
    ("security.token_ttl_hours", "nan"), ("security.token_ttl_hours", "1e12"),
    ("security.session_ttl_hours", "0"), ("security.session_ttl_hours", "-8"),
    ("storage.max_document_bytes", "0"), ("storage.max_document_bytes", "-5"),
    ("storage.retention_days", "0"), ("storage.retention_days", "36501"),
    ("schedule.dispatch_seconds", "0"), ("schedule.dispatch_seconds", "-2"),
    ("schedule.dispatch_batch", "0"), ("schedule.dispatch_batch", "-1"),
    ("schedule.lease_seconds", "0"), ("schedule.lease_seconds", "-300"),
    ("schedule.retry_first_minutes", "-3"), ("schedule.retry_first_minutes", "0"),
    ("schedule.retry_max_minutes", "0"),
    ("schedule.retry_give_up_hours", "0"), ("schedule.retry_give_up_hours", "-inf"),
    ("schedule.imap_poll_seconds", "0"),
    ("schedule.reminder_check_seconds", "0"),
    ("schedule.housekeeping_seconds", "0"), ("schedule.housekeeping_seconds", "1e300"),
    ("schedule.support_sweep_seconds", "-1"),
    ("retention.mail_days", "-1"), ("retention.mail_days", "0"),
    ("retention.raw_inbound_days", "0"), ("retention.raw_inbound_days", "-30"),
    ("schedule.webhook_seconds", "0"),
    ("api.rate_per_minute", "0"), ("api.rate_per_minute", "2000000"),
    ("webhooks.timeout_seconds", "0"), ("webhooks.retry_first_seconds", "-1"),
    ("webhooks.retry_max_seconds", "0"), ("webhooks.give_up_hours", "0"),
]


def env_name(key: str) -> str:
    section, name = key.split(".")
    return f"MAILFLOW_{section.upper()}__{name.upper()}"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No MAILFLOW_ setting from outside; a database and a documents folder of this test's own."""
    for name in list(os.environ):
        if name.startswith("MAILFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", f"sqlite:///{tmp_path / 'mf.db'}")
    monkeypatch.setenv("MAILFLOW_STORAGE__DOCUMENTS_DIR", str(tmp_path / "documents"))
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mailflow ARGS` as an operator runs it. The timeout only stops a daemon that wrongly started."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    return subprocess.run([sys.executable, "-m", "mailflow", *args], capture_output=True, text=True,
                          env={**base, "PYTHONPATH": str(REPO), **env}, cwd=cwd, timeout=120)


def test_every_numeric_key_has_a_lower_bound() -> None:
    keys = numeric_keys(Settings())
    assert len(keys) >= 20
    for key, _value, bounds in keys:
        assert bounds.get("least") is not None or bounds.get("above") is not None, key


def test_the_defaults_and_the_shipped_file_are_within_bounds() -> None:
    load_settings(None, {})
    load_settings(str(REPO / "config" / "mailflow.toml"), {})


def test_the_bad_values_cover_every_numeric_key() -> None:
    assert {key for key, _ in BAD_NUMBERS} == {key for key, _, _ in numeric_keys(Settings())}


@pytest.mark.parametrize(("key", "value"), BAD_NUMBERS)
def test_an_out_of_range_number_stops_init_with_one_line(clean_env: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         key: str, value: str) -> None:
    clean_env.setenv(env_name(key), value)
    assert main(["init"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"mailflow: configuration error: {key}: "), line
    assert not (tmp_path / "mf.db").exists()  # refused before the database was touched


@pytest.mark.parametrize(("key", "value"), [
    ("http.port", "0"),  # the worker role's "no HTTP"
    ("smtp.port", "0"),  # capture mode: a free port
    ("inbound.smtp_port", "0"),  # off
    ("schedule.retry_first_minutes", "0.002"),
    ("schedule.dispatch_seconds", "0.2"),
    ("retention.mail_days", "1"),
    ("security.token_ttl_hours", "0.5"),
])
def test_documented_and_small_values_are_accepted(key: str, value: str) -> None:
    load_settings(None, {env_name(key): value})


def test_the_message_names_the_bound(clean_env: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("MAILFLOW_RETENTION__MAIL_DAYS", "-1")
    clean_env.setenv("MAILFLOW_SECURITY__TOKEN_TTL_HOURS", "0")  # the first bad key is the one named
    assert main(["init"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "mailflow: configuration error: security.token_ttl_hours: must be greater than 0, got 0")


def test_a_bad_value_in_the_file_is_refused_too(clean_env: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("[retention]\nmail_days = -1\n", encoding="utf-8")
    assert main(["--config", str(file), "init"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "mailflow: configuration error: retention.mail_days: must be between 1 and 36500, got -1")


def test_negative_retention_deletes_nothing_because_run_does_not_start(db_url: str, ctx: AppContext,
                                                                       tmp_path: Path) -> None:
    # A mail sent a day ago: any retention of at least a day keeps it, -1 days would delete it.
    with ctx.db.session() as session:
        session.add(OutboxMessage(template="registration-received", to_address="a@example.com",
                                  to_key="a@example.com", message_id="<kept@t>", status=OutboxStatus.SENT,
                                  created_at=now() - timedelta(days=1)))
    env = {"MAILFLOW_DATABASE__URL": db_url, "MAILFLOW_RETENTION__MAIL_DAYS": "-1",
           "MAILFLOW_SCHEDULE__HOUSEKEEPING_SECONDS": "0.1",
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents")}
    result = run_cli(["run"], env, tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "mailflow: configuration error: retention.mail_days: must be between 1 and 36500, got -1")
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


@pytest.mark.parametrize("cron", ["xx", "61 * * * *", "0 8 * * * *", "0 25 * * *", "0 8 30 2 *"])
def test_a_bad_digest_cron_stops_run_with_one_line(tmp_path: Path, cron: str) -> None:
    env = {"MAILFLOW_DATABASE__URL": f"sqlite:///{tmp_path / 'mf.db'}",
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents"),
           "MAILFLOW_SCHEDULE__DIGEST_CRON": cron}
    result = run_cli(["run"], env, tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("mailflow: configuration error: schedule.digest_cron: ")
    assert "Traceback" not in result.stderr


def test_the_digest_cron_is_read_in_the_configured_time_zone() -> None:
    settings = load_settings(None, {"MAILFLOW_SCHEDULE__DIGEST_CRON": "30 7 * * mon-fri",
                                    "MAILFLOW_SCHEDULE__TIMEZONE": "Europe/Berlin"})
    assert settings.schedule.digest_cron == "30 7 * * mon-fri"


@pytest.mark.parametrize("command", ["init", "run"])
def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path, command: str) -> None:
    env = {"MAILFLOW_DATABASE__URL": "postgresql+psycopg://someone:s3cret-pw@127.0.0.1:1/nowhere",
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents")}
    result = run_cli([command], env, tmp_path)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("mailflow: cannot start: database.url: cannot connect to "
                           "postgresql+psycopg://someone:***@127.0.0.1:1/nowhere: "), line
    assert "refused" in line.lower()
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_a_sqlite_database_whose_folder_is_a_file(clean_env: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain").write_text("not a folder", encoding="utf-8")
    clean_env.setenv("MAILFLOW_DATABASE__URL", f"sqlite:///{tmp_path / 'plain' / 'mf.db'}")
    assert main(["init"]) == 1
    assert one_line(capsys.readouterr().err).startswith("mailflow: cannot start: database.url: ")


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_run_refuses_a_documents_dir_it_cannot_write(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "plain"
    blocker.write_text("not a folder", encoding="utf-8")
    folder = blocker if where == "file" else blocker / "documents"
    env = {"MAILFLOW_DATABASE__URL": f"sqlite:///{tmp_path / 'mf.db'}",
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(folder)}
    result = run_cli(["run"], env, tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == (f"mailflow: configuration error: storage.documents_dir: {folder} "
                                       "is not a writable folder (a file is in the way)")
    assert blocker.read_text(encoding="utf-8") == "not a folder"
    assert not (tmp_path / "mf.db").exists()  # refused before the database was touched


def test_run_refuses_http_port_zero_when_it_serves_http(tmp_path: Path) -> None:
    env = {"MAILFLOW_DATABASE__URL": f"sqlite:///{tmp_path / 'mf.db'}",
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents"), "MAILFLOW_HTTP__PORT": "0"}
    result = run_cli(["run", "--role", "web"], env, tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("mailflow: configuration error: http.port: ")


def test_changing_only_the_port_moves_the_links_in_mails_too() -> None:
    """MAILFLOW_HTTP__PORT=8081 alone (the contract's own example): the verification links and the start
    banner must lead to 8081, not to the default 8080. An explicit base_url always wins."""
    assert load_settings(None, {}).http.base_url == "http://127.0.0.1:8080"
    assert load_settings(None, {"MAILFLOW_HTTP__PORT": "8081"}).http.base_url == "http://127.0.0.1:8081"
    wildcard = {"MAILFLOW_HTTP__HOST": "0.0.0.0", "MAILFLOW_HTTP__PORT": "9000"}
    assert load_settings(None, wildcard).http.base_url == "http://127.0.0.1:9000"
    public = {"MAILFLOW_HTTP__PORT": "8081", "MAILFLOW_HTTP__BASE_URL": "https://hep.twport.com.tw"}
    assert load_settings(None, public).http.base_url == "https://hep.twport.com.tw"
    settings = load_settings(None, {"MAILFLOW_HTTP__PORT": "8081"})
    link = str(sample_context("account-approved", settings)["verify_url"])
    assert link.startswith("http://127.0.0.1:8081/verify/")


@pytest.mark.parametrize("command", [["review", "list"], ["outbox", "list"], ["support", "digest"]])
def test_every_command_says_in_one_line_that_the_database_is_unreachable(
        command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", "postgresql+psycopg://u:secretpw@127.0.0.1:9/x")
    assert main(command) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "database.url: cannot connect" in err
    assert "secretpw" not in err


RELAY = {"MAILFLOW_SMTP__MODE": "relay", "MAILFLOW_SMTP__HOST": "127.0.0.1", "MAILFLOW_SMTP__PORT": "25",
         "MAILFLOW_SECURITY__SECRET_KEY": "a-real-production-secret-key-0123456789"}


@pytest.mark.parametrize("base_url", [
    "",  # unset: this server's own http://127.0.0.1:8080
    "http://hep.twport.com.tw",  # no TLS
    "https://127.0.0.1", "https://127.0.0.2:8443", "https://[::1]", "https://0.0.0.0",
    "https://localhost", "https://app.localhost.", "https://LOCALHOST:443/",
    "https://",
])
def test_relay_mode_refuses_a_link_origin_people_cannot_use(base_url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(None, {**RELAY, "MAILFLOW_HTTP__BASE_URL": base_url})
    assert str(refused.value).startswith("http.base_url: relay mode needs the public https:// address")


def test_relay_mode_without_a_base_url_does_not_start(tmp_path: Path) -> None:
    env = {**RELAY, "MAILFLOW_DATABASE__URL": f"sqlite:///{tmp_path / 'mf.db'}",
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents")}
    result = run_cli(["run"], env, tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "mailflow: configuration error: http.base_url: relay mode needs the public https:// address that "
        "links in mails point to (not empty, loopback or http://), got 'http://127.0.0.1:8080'")
    assert not (tmp_path / "mf.db").exists()  # refused before anything started


def test_relay_mode_takes_a_public_https_origin_and_capture_mode_any() -> None:
    public = load_settings(None, {**RELAY, "MAILFLOW_HTTP__BASE_URL": "https://hep.twport.com.tw"})
    assert public.http.base_url == "https://hep.twport.com.tw"
    assert load_settings(None, {"MAILFLOW_HTTP__BASE_URL": "http://127.0.0.1:8080"}).smtp.mode == "capture"


def test_the_pass_system_address_in_document_approved_is_a_setting(tmp_path: Path) -> None:
    settings = load_settings(None, {"MAILFLOW_MAIL__PASS_SYSTEM_URL": "https://pass.example.gov.tw/apply/"})
    assert settings.mail.pass_system_url == "https://pass.example.gov.tw/apply/"
    with pytest.raises(ConfigError) as refused:
        load_settings(None, {"MAILFLOW_MAIL__PASS_SYSTEM_URL": "pass.example.gov.tw"})
    assert str(refused.value).startswith("mail.pass_system_url: ")
