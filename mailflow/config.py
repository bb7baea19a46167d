"""Settings: the TOML file plus MAILFLOW_<SECTION>__<KEY> environment overrides.

Where the file comes from: ``--config FILE``, else ``$MAILFLOW_CONFIG``, else ``config/mailflow.toml``
(the embedded default, looked up in the working directory and then beside the package). Every value is
checked once at start; a bad one stops the program with one line naming the key.

Relative paths (a SQLite database.url, storage.documents_dir, mail.dkim_key) do not depend on the
folder a command is run from: from the file or the defaults they are read against the data folder —
the folder of the configuration file, or the one above it when the file sits in a `config/` folder
(this checkout's layout: config/ beside var/); with no file at all, $XDG_DATA_HOME/mailflow
(~/.local/share/mailflow). From the environment they are read against the working folder, as a shell
user typing them means. `mailflow run` prints the database and the documents folder it uses.

Settings are frozen once loaded (a change is a new Settings: Settings.updated), and their repr shows no
secret (passwords, the secret key, a password inside database.url).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
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


def _secret(default: str = "") -> Any:
    """A setting that repr() must not show (a password, a key)."""
    return field(default=default, metadata={"secret": True})


def hide_url_password(url: str) -> str:
    """``scheme://user:***@host/…``: a database URL as it may be shown or logged."""
    return re.sub(r"^([\w+.-]+://[^:/@]*:)[^@]*@", r"\1***@", url)


class _Section:
    """repr() of a settings section: secrets as '***' (or '' when unset), URLs without their password."""

    def __repr__(self) -> str:
        shown = []
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if item.metadata.get("secret"):
                text = "'***'" if value else "''"
            elif isinstance(value, str) and "://" in value:
                text = repr(hide_url_password(value))
            else:
                text = repr(value)
            shown.append(f"{item.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _bounded(default: float, *, least: float | None = None, above: float | None = None,
             most: float | None = None) -> Any:
    """A numeric setting and its allowed range, kept beside the key; validate() checks every one."""
    return field(default=default, metadata={"least": least, "above": above, "most": most})


@dataclass(frozen=True, repr=False)
class DatabaseSettings(_Section):
    url: str = "sqlite:///var/mailflow.db"


@dataclass(frozen=True, repr=False)
class HttpSettings(_Section):
    host: str = "127.0.0.1"
    # 0 lets the worker role, which serves no HTTP, start without a port; `run` refuses it for HTTP.
    port: int = _bounded(8080, least=0, most=65535)
    # Empty: this server's own address, from host and port (see local_base_url). Set it in production
    # to the public origin (https://…) that the links in mails must point to.
    base_url: str = ""
    # Which peers may tell us the client's address in X-Forwarded-For / X-Forwarded-Proto (uvicorn's
    # forwarded_allow_ips: comma-separated addresses or networks, "*" for any). Empty: none — the TCP
    # peer is the client, and a forged header changes nothing (issue 13 finding 4). Behind a reverse
    # proxy, name the proxy's address, so the login limits count each real client.
    forwarded_allow_ips: str = ""


SmtpMode = Literal["capture", "relay"]
SMTP_MODES: tuple[str, ...] = get_args(SmtpMode)


@dataclass(frozen=True, repr=False)
class SmtpSettings(_Section):
    mode: SmtpMode = "capture"
    host: str = "127.0.0.1"
    port: int = _bounded(0, least=0, most=65535)  # capture: 0 picks a free port; relay needs one
    starttls: bool = False
    username: str = ""
    password: str = _secret()
    timeout_seconds: float = _bounded(30.0, above=0, most=3600)


@dataclass(frozen=True, repr=False)
class InboundSettings(_Section):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = _bounded(0, least=0, most=65535)  # 0 = off
    # Below 1 KiB not even a bounce's headers fit.
    max_message_bytes: int = _bounded(50 * 1024 * 1024, least=1024)
    imap_host: str = ""
    imap_port: int = _bounded(993, least=1, most=65535)  # IMAP is off by an empty imap_host
    imap_user: str = ""
    imap_password: str = _secret()
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


@dataclass(frozen=True, repr=False)
class MailSettings(_Section):
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


@dataclass(frozen=True, repr=False)
class SecuritySettings(_Section):
    secret_key: str = _secret(DEV_SECRET_KEY)
    # At most a year: a link or a login that never expires is not one.
    token_ttl_hours: float = _bounded(72.0, above=0, most=HOURS_PER_YEAR)
    session_ttl_hours: float = _bounded(8.0, above=0, most=HOURS_PER_YEAR)
    # GET /metrics asks for `Authorization: Bearer <metrics_token>` when it is set. Unset, relay mode
    # (production) answers /metrics to loopback clients only; capture mode (development) to anyone.
    metrics_token: str = ""


@dataclass(frozen=True, repr=False)
class StorageSettings(_Section):
    # Where documents' bytes go: "filesystem" (files under documents_dir) or "database" (chunks written in
    # the registration's transaction). Empty: database when database.url is PostgreSQL, else filesystem.
    backend: str = ""
    documents_dir: str = "var/documents"
    max_document_bytes: int = _bounded(10 * 1024 * 1024, least=1)
    # Documents of rejected applications are removed this many days after the decision (個人資料保護法).
    retention_days: int = _bounded(180, least=1, most=36_500)


@dataclass(frozen=True, repr=False)
class ScheduleSettings(_Section):
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


@dataclass(frozen=True, repr=False)
class RetentionSettings(_Section):
    # 0 or less would make the first housekeeping run delete every stored mail.
    mail_days: int = _bounded(400, least=1, most=36_500)
    raw_inbound_days: int = _bounded(30, least=1, most=36_500)


@dataclass(frozen=True, repr=False)
class ApiSettings(_Section):
    # What a new key may do per minute unless `mailflow apikey add --rate N` says otherwise.
    rate_per_minute: int = _bounded(600, least=1, most=1_000_000)


@dataclass(frozen=True, repr=False)
class WebhookSettings(_Section):
    timeout_seconds: float = _bounded(10.0, above=0, most=300)
    # A failing subscriber is tried again after retry_first_seconds, doubling up to retry_max_seconds,
    # and disabled once it has failed for give_up_hours (the events wait for it; none is dropped).
    retry_first_seconds: float = _bounded(10.0, above=0, most=SECONDS_PER_DAY)
    retry_max_seconds: float = _bounded(3600.0, above=0, most=SECONDS_PER_DAY)
    give_up_hours: float = _bounded(72.0, above=0, most=HOURS_PER_YEAR)


@dataclass(frozen=True)
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
    data_dir: str = ""  # the folder relative paths of the file and the defaults were read against

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

    def updated(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys changed, e.g. ``settings.updated(smtp={"mode": "relay", "port": 25})``
        (attribute names: ``from_`` for mail.from). Not validated: for tests and tools that know better."""
        changed = {name: dataclasses.replace(getattr(self, name), **values)
                   for name, values in sections.items()}
        return dataclasses.replace(self, **changed)


DEFAULTS = Settings()


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


# Keys holding a path that is read against the data folder when it is relative.
PATH_KEYS = ("database.url", "storage.documents_dir", "mail.dkim_key")


def _put(values: dict[str, dict[str, Any]], section: str, key: str, value: Any) -> None:
    """Check one ``section.key`` against the defaults and keep its value, coerced to the default's type."""
    name = f"{section}.{key}"
    group = getattr(DEFAULTS, section, None)
    if group is None or not dataclasses.is_dataclass(group):
        raise ConfigError(f"{name}: unknown section [{section}]")
    attr = _attr(key)
    if attr not in {item.name for item in dataclasses.fields(group)}:
        raise ConfigError(f"{name}: unknown key")
    values.setdefault(section, {})[attr] = _coerce(name, getattr(group, attr), value)


def resolve_config_path(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("MAILFLOW_CONFIG"):
        return Path(env["MAILFLOW_CONFIG"])
    for candidate in (Path.cwd() / DEFAULT_CONFIG, PROJECT_ROOT / DEFAULT_CONFIG):
        if candidate.is_file():
            return candidate
    return None  # the built-in defaults equal the shipped file


def data_dir(file: Path | None, env: Mapping[str, str]) -> Path:
    """The folder relative paths of the file and of the defaults mean: the configuration file's folder,
    or its parent when that folder is a `config/` (the layout shipped: config/mailflow.toml beside var/);
    without a file, $XDG_DATA_HOME/mailflow (default ~/.local/share/mailflow)."""
    if file is not None:
        folder = file.resolve().parent
        return folder.parent if folder.name == "config" else folder
    xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).resolve() / "mailflow"


def _anchored(key: str, value: str, base: Path) -> str:
    """``value`` of a PATH_KEYS key with a relative path made absolute against ``base``."""
    if key == "database.url":
        prefix = "sqlite:///"
        path = value[len(prefix):] if value.startswith(prefix) else ""
        if not path or path.startswith("/") or path.startswith(":memory:") or path.startswith("file:"):
            return value  # not SQLite, absolute, in memory, or a URI filename: as given
        return prefix + str(base / path)
    return value if not value or Path(value).is_absolute() else str(base / value)


def load_settings(path: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    values: dict[str, dict[str, Any]] = {}
    from_env: set[str] = set()
    file = resolve_config_path(path, env)
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config: file not found: {file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {file} is not valid TOML: {exc}") from None
        for section, entries in data.items():
            if not isinstance(entries, dict):
                raise ConfigError(f"{section}: expected a [section] table")
            for key, value in entries.items():
                _put(values, section, key, value)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "MAILFLOW_CONFIG":
            continue
        section, _, key = name[len(ENV_PREFIX):].partition("__")
        _put(values, section.lower(), key.lower(), value)
        from_env.add(f"{section.lower()}.{key.lower()}")
    base = data_dir(file, env)
    defaults = DEFAULTS
    for key in PATH_KEYS:
        section, _, attr = key.partition(".")
        given = values.get(section, {}).get(attr, getattr(getattr(defaults, section), attr))
        anchor = Path.cwd() if key in from_env else base
        values.setdefault(section, {})[attr] = _anchored(key, given, anchor)
    http = values.setdefault("http", {})
    if not http.get("base_url"):
        http["base_url"] = local_base_url(http.get("host", defaults.http.host),
                                          http.get("port", defaults.http.port))
    settings = dataclasses.replace(defaults.updated(**values), source=str(file or ""), data_dir=str(base))
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
    if settings.smtp.mode not in SMTP_MODES:
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
