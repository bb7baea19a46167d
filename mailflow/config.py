"""Settings: the TOML file plus MAILFLOW_<SECTION>__<KEY> environment overrides.

Where the file comes from: ``--config FILE``, else ``$MAILFLOW_CONFIG``, else ``config/mailflow.toml``
(the embedded default, looked up in the working directory and then beside the package). Every value is
checked once at start; a bad one stops the program with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
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


HOURS_PER_YEAR = 366 * 24
MINUTES_PER_WEEK = 7 * 24 * 60
SECONDS_PER_DAY = 24 * 3600


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


class StartupError(RuntimeError):
    """Settings that are valid but cannot be used right now (the database does not answer); the message
    names the key and the cause, never a password."""


def _bounded(default: float, *, least: float | None = None, above: float | None = None,
             most: float | None = None) -> Any:
    """A numeric setting and its allowed range, kept beside the key; validate() checks every one."""
    return field(default=default, metadata={"least": least, "above": above, "most": most})


@dataclass
class DatabaseSettings:
    url: str = "sqlite:///var/mailflow.db"


@dataclass
class HttpSettings:
    host: str = "127.0.0.1"
    # 0 lets the worker role, which serves no HTTP, start without a port; `run` refuses it for HTTP.
    port: int = _bounded(8080, least=0, most=65535)
    # Empty: this server's own address, from host and port (see local_base_url). Set it in production
    # to the public origin (https://…) that the links in mails must point to.
    base_url: str = ""


@dataclass
class SmtpSettings:
    mode: str = "capture"
    host: str = "127.0.0.1"
    port: int = _bounded(0, least=0, most=65535)  # capture: 0 picks a free port; relay needs one
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_seconds: float = _bounded(30.0, above=0, most=3600)


@dataclass
class InboundSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = _bounded(0, least=0, most=65535)  # 0 = off
    # Below 1 KiB not even a bounce's headers fit.
    max_message_bytes: int = _bounded(50 * 1024 * 1024, least=1024)
    imap_host: str = ""
    imap_port: int = _bounded(993, least=1, most=65535)  # IMAP is off by an empty imap_host
    imap_user: str = ""
    imap_password: str = ""
    imap_folder: str = "INBOX"
    imap_ssl: bool = True
    # Sender authentication of replies (mailflow.inbound.sender_auth): the authserv-id(s) our receiving
    # server writes in Authentication-Results (comma-separated; empty = those headers are not read), how
    # many Received headers our own servers add above the mail's own headers, whether to verify DKIM
    # here when our server left no verdict, and the DNS server for the keys ('' = the system's).
    authserv_id: str = ""
    authserv_hops: int = _bounded(1, least=1, most=20)
    dkim_verify: bool = True
    dns_resolver: str = ""


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
    # Where document-approved sends the company to request its passes (the pass system, not mailflow).
    pass_system_url: str = "https://hep.twport.com.tw/twportpass/"


@dataclass
class SecuritySettings:
    secret_key: str = DEV_SECRET_KEY
    # At most a year: a link or a login that never expires is not one.
    token_ttl_hours: float = _bounded(72.0, above=0, most=HOURS_PER_YEAR)
    session_ttl_hours: float = _bounded(8.0, above=0, most=HOURS_PER_YEAR)


@dataclass
class StorageSettings:
    # Where documents' bytes go: "filesystem" (files under documents_dir) or "database" (chunks written in
    # the registration's transaction). Empty: database when database.url is PostgreSQL, else filesystem.
    backend: str = ""
    documents_dir: str = "var/documents"
    max_document_bytes: int = _bounded(10 * 1024 * 1024, least=1)
    # Documents of rejected applications are removed this many days after the decision (個人資料保護法).
    retention_days: int = _bounded(180, least=1, most=36_500)


@dataclass
class ScheduleSettings:
    # Intervals run at least once a day (the digest catch-up rides on support_sweep_seconds); the
    # upper bounds also keep every value inside what timedelta and APScheduler can hold.
    dispatch_seconds: float = _bounded(2.0, above=0, most=SECONDS_PER_DAY)
    dispatch_batch: int = _bounded(200, least=1, most=100_000)
    lease_seconds: float = _bounded(300.0, least=1, most=SECONDS_PER_DAY)
    retry_first_minutes: float = _bounded(5.0, above=0, most=MINUTES_PER_WEEK)
    retry_max_minutes: float = _bounded(240.0, above=0, most=MINUTES_PER_WEEK)
    retry_give_up_hours: float = _bounded(120.0, above=0, most=HOURS_PER_YEAR)
    imap_poll_seconds: float = _bounded(60.0, above=0, most=SECONDS_PER_DAY)
    reminder_check_seconds: float = _bounded(300.0, above=0, most=SECONDS_PER_DAY)
    housekeeping_seconds: float = _bounded(3600.0, above=0, most=SECONDS_PER_DAY)
    support_sweep_seconds: float = _bounded(3600.0, above=0, most=SECONDS_PER_DAY)
    digest_cron: str = "0 8 * * *"
    webhook_seconds: float = _bounded(2.0, above=0, most=SECONDS_PER_DAY)  # event delivery to subscribers
    timezone: str = "Asia/Taipei"


@dataclass
class RetentionSettings:
    # 0 or less would make the first housekeeping run delete every stored mail.
    mail_days: int = _bounded(400, least=1, most=36_500)
    raw_inbound_days: int = _bounded(30, least=1, most=36_500)


@dataclass
class ApiSettings:
    # What a new key may do per minute unless `mailflow apikey add --rate N` says otherwise.
    rate_per_minute: int = _bounded(600, least=1, most=1_000_000)


@dataclass
class WebhookSettings:
    timeout_seconds: float = _bounded(10.0, above=0, most=300)
    # A failing subscriber is tried again after retry_first_seconds, doubling up to retry_max_seconds,
    # and disabled once it has failed for give_up_hours (the events wait for it; none is dropped).
    retry_first_seconds: float = _bounded(10.0, above=0, most=SECONDS_PER_DAY)
    retry_max_seconds: float = _bounded(3600.0, above=0, most=SECONDS_PER_DAY)
    give_up_hours: float = _bounded(72.0, above=0, most=HOURS_PER_YEAR)


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
    api: ApiSettings = field(default_factory=ApiSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    source: str = ""  # the file these settings came from, for messages

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.schedule.timezone)

    @property
    def documents_path(self) -> Path:
        return Path(self.storage.documents_dir)

    @property
    def document_backend(self) -> str:
        """storage.backend, or its default for database.url: "database" on PostgreSQL, else "filesystem"."""
        if self.storage.backend:
            return self.storage.backend
        return "database" if self.database.url.startswith("postgresql") else "filesystem"


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
            number = float(str(value).strip())
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        # float() takes "nan" and "inf", which pass every comparison check below them.
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return number
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
    if not settings.http.base_url:
        settings.http.base_url = local_base_url(settings.http.host, settings.http.port)
    validate(settings)
    return settings


def local_base_url(host: str, port: int) -> str:
    """The origin of this server as a browser on the same machine reaches it: so that changing only
    http.port (MAILFLOW_HTTP__PORT=8081) also moves the links in mails and the start banner. A wildcard
    host is reached as 127.0.0.1; port 0 (a worker serving no HTTP) keeps the default 8080."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"  # an IPv6 address in a URL
    return f"http://{shown}:{port or 8080}"


def _check_address(key: str, value: str) -> None:
    from email.utils import parseaddr

    address = parseaddr(value)[1]
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        raise ConfigError(f"{key}: not a valid mail address: {value!r}") from None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_range(key: str, value: float, bounds: Mapping[str, Any]) -> None:
    least, above, most = bounds.get("least"), bounds.get("above"), bounds.get("most")
    got = f", got {_number(value)}"
    if least is not None and most is not None and not least <= value <= most:
        raise ConfigError(f"{key}: must be between {_number(least)} and {_number(most)}{got}")
    if least is not None and value < least:
        raise ConfigError(f"{key}: must be at least {_number(least)}{got}")
    if above is not None and not value > above:
        raise ConfigError(f"{key}: must be greater than {_number(above)}{got}")
    if most is not None and value > most:
        raise ConfigError(f"{key}: must be at most {_number(most)}{got}")


def numeric_keys(settings: Settings) -> list[tuple[str, float, Mapping[str, Any]]]:
    """Every numeric setting as (``section.key``, value, its bounds), in declaration order."""
    found: list[tuple[str, float, Mapping[str, Any]]] = []
    for section in dataclasses.fields(settings):
        group = getattr(settings, section.name)
        if not dataclasses.is_dataclass(group):
            continue
        for item in dataclasses.fields(group):
            value = getattr(group, item.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found.append((f"{section.name}.{item.name.rstrip('_')}", value, item.metadata))
    return found


def _check_public_url(key: str, url: str) -> None:
    """Relay mode mails real people: a link must reach this service from their side (not this machine's
    loopback, which spam filters also score) and over TLS."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    try:
        local = ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost")
    if not url.startswith("https://") or not host or local:
        raise ConfigError(f"{key}: relay mode needs the public https:// address that links in mails point to "
                          f"(not empty, loopback or http://), got {url!r}")


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url

    # The message never repeats the URL: it may hold the password.
    try:
        driver = make_url(url).drivername
    except Exception as exc:
        raise ConfigError(f"database.url: not a valid SQLAlchemy URL ({type(exc).__name__})") from None
    if driver not in {"sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg"}:
        raise ConfigError(f"database.url: must be a sqlite:// or postgresql+psycopg:// URL, got {driver}://")


def _check_cron(cron: str, timezone: str) -> None:
    """The digest's schedule, read the way the scheduler will read it, so a typo stops the start instead
    of the scheduler."""
    from datetime import datetime

    from apscheduler.triggers.cron import CronTrigger

    try:
        trigger = CronTrigger.from_crontab(cron, timezone=timezone)
    except ValueError as exc:
        raise ConfigError(f"schedule.digest_cron: not a valid cron expression {cron!r}: {exc}") from None
    if trigger.get_next_fire_time(None, datetime.now(ZoneInfo(timezone))) is None:
        raise ConfigError(f"schedule.digest_cron: {cron!r} never fires")


def _check_dns_resolver(value: str) -> None:
    """'' (the system's resolver), an IP address, or IPv4:port."""
    text = value.strip()
    if not text:
        return
    host, port = text, ""
    if text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        ipaddress.ip_address(host)
        if port and not 0 < int(port) < 65536:
            raise ValueError(port)
    except ValueError:
        raise ConfigError(f"inbound.dns_resolver: expected an IP address or address:port, got {value!r}") \
            from None


def validate(settings: Settings) -> None:
    """Every numeric key within its bounds, then the cross-field checks; each failure names its key."""
    _check_database_url(settings.database.url)
    for key, value, bounds in numeric_keys(settings):
        _check_range(key, value, bounds)
    if settings.storage.backend not in {"", "filesystem", "database"}:
        raise ConfigError(f"storage.backend: must be 'filesystem' or 'database', "
                          f"got {settings.storage.backend!r}")
    if settings.smtp.mode not in {"capture", "relay"}:
        raise ConfigError(f"smtp.mode: must be 'capture' or 'relay', got {settings.smtp.mode!r}")
    if not settings.http.base_url.startswith(("http://", "https://")):
        raise ConfigError("http.base_url: must start with http:// or https://")
    if settings.smtp.mode == "relay":
        if settings.security.secret_key == DEV_SECRET_KEY:
            raise ConfigError("security.secret_key: relay mode refuses the shipped development key")
        if not settings.smtp.host or settings.smtp.port == 0:
            raise ConfigError("smtp.port: relay mode needs smtp.host and a non-zero smtp.port")
        _check_public_url("http.base_url", settings.http.base_url)
    if not settings.mail.pass_system_url.startswith(("http://", "https://")):
        raise ConfigError("mail.pass_system_url: must start with http:// or https://")
    if len(settings.security.secret_key) < 16:
        raise ConfigError("security.secret_key: must be at least 16 characters")
    _check_address("mail.from", settings.mail.from_)
    _check_address("mail.support_address", settings.mail.support_address)
    if not settings.mail.bounce_domain or "@" in settings.mail.bounce_domain:
        raise ConfigError("mail.bounce_domain: must be a domain name")
    try:
        ZoneInfo(settings.schedule.timezone)
    except Exception:
        raise ConfigError(f"schedule.timezone: unknown time zone {settings.schedule.timezone!r}") from None
    _check_cron(settings.schedule.digest_cron, settings.schedule.timezone)
    _check_dns_resolver(settings.inbound.dns_resolver)
    if bool(settings.mail.dkim_key) != bool(settings.mail.dkim_selector):
        raise ConfigError("mail.dkim_selector: set both mail.dkim_key and mail.dkim_selector, or neither")
