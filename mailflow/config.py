"""Settings: the TOML file plus MAILFLOW_<SECTION>__<KEY> environment overrides.

Where the file comes from: ``--config FILE``, else ``$MAILFLOW_CONFIG``, else ``config/mailflow.toml``
(the embedded default, looked up in the working directory and then beside the package). Every value is
checked once at start; a bad one stops the program with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
ENV_PREFIX = "MAILFLOW_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path("config") / "mailflow.toml"


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass
class DatabaseSettings:
    url: str = "sqlite:///var/mailflow.db"


@dataclass
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"


@dataclass
class SmtpSettings:
    mode: str = "capture"
    host: str = "127.0.0.1"
    port: int = 0
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_seconds: float = 30.0


@dataclass
class InboundSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 0
    max_message_bytes: int = 50 * 1024 * 1024
    imap_host: str = ""
    imap_port: int = 993
    imap_user: str = ""
    imap_password: str = ""
    imap_folder: str = "INBOX"
    imap_ssl: bool = True


@dataclass
class MailSettings:
    # "from" is a Python keyword; the TOML key and the environment key stay `from`.
    from_: str = "港區通行證通用管理系統工作小組 <hep@twport.com.tw>"
    bounce_domain: str = "bounces.twport.com.tw"
    reply_address: str = ""
    support_address: str = "hep-support@twport.com.tw"
    support_phone: str = "0809-088-568"
    support_hours: str = "08:00-18:00"
    dkim_key: str = ""
    dkim_selector: str = ""
    message_id_domain: str = "twport.com.tw"


@dataclass
class SecuritySettings:
    secret_key: str = DEV_SECRET_KEY
    token_ttl_hours: float = 72.0
    session_ttl_hours: float = 8.0


@dataclass
class StorageSettings:
    documents_dir: str = "var/documents"
    max_document_bytes: int = 10 * 1024 * 1024


@dataclass
class ScheduleSettings:
    dispatch_seconds: float = 2.0
    dispatch_batch: int = 200
    lease_seconds: float = 300.0
    retry_first_minutes: float = 5.0
    retry_max_minutes: float = 240.0
    retry_give_up_hours: float = 120.0
    imap_poll_seconds: float = 60.0
    reminder_check_seconds: float = 300.0
    housekeeping_seconds: float = 3600.0
    support_sweep_seconds: float = 3600.0
    digest_cron: str = "0 8 * * *"
    timezone: str = "Asia/Taipei"


@dataclass
class RetentionSettings:
    mail_days: int = 400
    raw_inbound_days: int = 30


@dataclass
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    inbound: InboundSettings = field(default_factory=InboundSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    source: str = ""  # the file these settings came from, for messages

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.schedule.timezone)

    @property
    def documents_path(self) -> Path:
        return Path(self.storage.documents_dir)


def _attr(key: str) -> str:
    return "from_" if key == "from" else key


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Turn a TOML or environment value into the type of the default, or raise naming the key."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(str(value).strip())
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _apply(settings: Settings, section: str, key: str, value: Any) -> None:
    name = f"{section}.{key}"
    group = getattr(settings, section, None)
    if section == "source" or group is None or not dataclasses.is_dataclass(group):
        raise ConfigError(f"{name}: unknown section [{section}]")
    attr = _attr(key)
    if not hasattr(group, attr):
        raise ConfigError(f"{name}: unknown key")
    setattr(group, attr, _coerce(name, getattr(group, attr), value))


def resolve_config_path(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("MAILFLOW_CONFIG"):
        return Path(env["MAILFLOW_CONFIG"])
    for candidate in (Path.cwd() / DEFAULT_CONFIG, PROJECT_ROOT / DEFAULT_CONFIG):
        if candidate.is_file():
            return candidate
    return None  # the built-in defaults equal the shipped file


def load_settings(path: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    settings = Settings()
    file = resolve_config_path(path, env)
    if file is not None:
        settings.source = str(file)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config: file not found: {file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {file} is not valid TOML: {exc}") from None
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{section}: expected a [section] table")
            for key, value in values.items():
                _apply(settings, section, key, value)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "MAILFLOW_CONFIG":
            continue
        section, _, key = name[len(ENV_PREFIX):].partition("__")
        _apply(settings, section.lower(), key.lower(), value)
    validate(settings)
    return settings


def _check_address(key: str, value: str) -> None:
    from email.utils import parseaddr

    address = parseaddr(value)[1]
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        raise ConfigError(f"{key}: not a valid mail address: {value!r}") from None


def validate(settings: Settings) -> None:
    """Cross-field checks; each failure names its key."""
    if not settings.database.url.startswith(("sqlite", "postgresql")):
        raise ConfigError("database.url: must be a sqlite:// or postgresql+psycopg:// URL")
    if settings.smtp.mode not in {"capture", "relay"}:
        raise ConfigError(f"smtp.mode: must be 'capture' or 'relay', got {settings.smtp.mode!r}")
    for key, port in (
        ("http.port", settings.http.port),
        ("smtp.port", settings.smtp.port),
        ("inbound.smtp_port", settings.inbound.smtp_port),
        ("inbound.imap_port", settings.inbound.imap_port),
    ):
        if not 0 <= port <= 65535:
            raise ConfigError(f"{key}: must be between 0 and 65535, got {port}")
    if not settings.http.base_url.startswith(("http://", "https://")):
        raise ConfigError("http.base_url: must start with http:// or https://")
    if settings.smtp.mode == "relay":
        if settings.security.secret_key == DEV_SECRET_KEY:
            raise ConfigError("security.secret_key: relay mode refuses the shipped development key")
        if not settings.smtp.host or settings.smtp.port == 0:
            raise ConfigError("smtp.port: relay mode needs smtp.host and a non-zero smtp.port")
    if len(settings.security.secret_key) < 16:
        raise ConfigError("security.secret_key: must be at least 16 characters")
    _check_address("mail.from", settings.mail.from_)
    _check_address("mail.support_address", settings.mail.support_address)
    if not settings.mail.bounce_domain or "@" in settings.mail.bounce_domain:
        raise ConfigError("mail.bounce_domain: must be a domain name")
    if settings.storage.max_document_bytes <= 0:
        raise ConfigError("storage.max_document_bytes: must be positive")
    if settings.schedule.dispatch_seconds <= 0:
        raise ConfigError("schedule.dispatch_seconds: must be positive")
    try:
        ZoneInfo(settings.schedule.timezone)
    except Exception:
        raise ConfigError(f"schedule.timezone: unknown time zone {settings.schedule.timezone!r}") from None
    if bool(settings.mail.dkim_key) != bool(settings.mail.dkim_selector):
        raise ConfigError("mail.dkim_selector: set both mail.dkim_key and mail.dkim_selector, or neither")
