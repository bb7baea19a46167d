"""`mailflow run`: the HTTP server, the scheduler, the capture SMTP server and the inbound SMTP server in
one process, or a part of them (``--role web`` or ``--role worker``) so several processes can share one
PostgreSQL. SIGTERM/SIGINT stop it cleanly: HTTP stops accepting, the dispatch loop waits for its
running tick (which finishes or releases its in-flight mails) and the scheduler for its running jobs,
the singleton leases this worker holds are given up so another worker takes over at once, then the mail
servers stop. A stop that hangs (an SMTP peer that never answers) is cut off after
SHUTDOWN_GRACE_SECONDS: whatever was in flight then is released by its lease expiring, so nothing is
lost either way.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import uvicorn

from mailflow import leases
from mailflow.config import ConfigError, Settings, hide_url_password
from mailflow.context import AppContext
from mailflow.inbound.imap import MailboxWatcher
from mailflow.inbound.smtp_server import start_inbound_server
from mailflow.mail import dispatch
from mailflow.mail.capture import start_capture_server
from mailflow.scheduler import DispatchLoop, build_scheduler
from mailflow.web.app import create_app, server_options

log = logging.getLogger(__name__)

# systemd's default TimeoutStopSec is 90 s and the contract promises an exit within 30 s.
SHUTDOWN_GRACE_SECONDS = 25.0


SERVES_HTTP = ("all", "web")


def _check_documents_dir(folder: Path) -> None:
    """Uploads are written here: a folder that is a file or cannot be written would answer every
    registration with 500, so it stops the start instead. A probe file tests what os.access cannot for
    root (a read-only mount, a full quota)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        in_the_way = isinstance(exc, (FileExistsError, NotADirectoryError))
        reason = "a file is in the way" if in_the_way else exc.strerror or type(exc).__name__
        raise ConfigError(f"storage.documents_dir: {folder} is not a writable folder ({reason})") from None


def _check_port_free(key: str, host: str, port: int) -> None:
    """Bind ``host:port`` for a moment as uvicorn binds it (IPv6 when the host has a ':', SO_REUSEADDR), so
    a port another program holds stops the start with a line naming it, before the banner promises URLs."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"{key}: {host}:{port} is already in use (another mailflow, or another "
                              f"program, listens there); stop it or choose another {key}") from None
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{key}: cannot listen on {host}:{port}: {reason}") from None
    finally:
        probe.close()


def check_before_start(settings: Settings, role: str) -> None:
    """What the daemon needs, refused with one line naming the key before anything starts: the ports it
    will listen on are free, and (serving HTTP) a writable documents folder."""
    if role in ("all", "worker"):
        if settings.smtp.mode == "capture" and settings.smtp.port:
            _check_port_free("smtp.port", "127.0.0.1", settings.smtp.port)
        if settings.inbound.smtp_port:
            _check_port_free("inbound.smtp_port", settings.inbound.smtp_host, settings.inbound.smtp_port)
    if role not in SERVES_HTTP:
        return  # a worker stores no documents and listens on no HTTP port
    if settings.http.port == 0:
        raise ConfigError("http.port: must be between 1 and 65535 to serve HTTP (0 only with --role worker)")
    _check_port_free("http.port", settings.http.host, settings.http.port)
    if settings.document_backend == "filesystem":
        _check_documents_dir(settings.documents_path)


def _banner(ctx: AppContext, role: str, extra: list[str]) -> None:
    base = ctx.settings.http.base_url.rstrip("/")
    lines = [f"mailflow is running (role {role}, worker {ctx.worker_id}):"]
    settings = ctx.settings
    lines.append(f"  database            {hide_url_password(settings.database.url)}")
    if role in SERVES_HTTP and settings.document_backend == "filesystem":
        lines.append(f"  documents folder    {settings.documents_path}")
    elif role in SERVES_HTTP:
        lines.append("  documents           in the database (storage.backend = database)")
    lines.append(f"  configuration       {settings.source or '(built-in defaults)'}")
    if role in ("all", "web"):
        lines += [
            f"  registration form   {base}/register",
            f"  shared account      {base}/shared/register",
            f"  applicant account   {base}/account",
            f"  reviewer console    {base}/review",
            f"  support dashboard   {base}/support",
        ]
        if ctx.settings.smtp.mode == "capture":
            lines.append(f"  captured mails      {base}/dev/mailbox")
    lines += extra
    lines.append("  staff login:        mailflow staff add NAME --role reviewer|support|admin")
    if ctx.settings.smtp.mode == "capture":
        lines.append("  try every page:     mailflow demo  (seeds staff logins and applications)")
    print("\n".join(lines), file=sys.stderr, flush=True)


def _start_mail_servers(ctx: AppContext, servers: list[Any], extra: list[str]) -> None:
    if ctx.settings.smtp.mode == "capture":
        servers.append(start_capture_server(ctx))
        extra.append(f"  capture SMTP        127.0.0.1:{ctx.capture_port}")
    if ctx.settings.inbound.smtp_port:
        servers.append(start_inbound_server(ctx))
        inbound = ctx.settings.inbound
        extra.append(f"  inbound SMTP        {inbound.smtp_host}:{inbound.smtp_port}")
    if ctx.settings.inbound.imap_host:
        # New mail is handled as the server announces it (IDLE), on the worker holding the IMAP lease.
        servers.append(MailboxWatcher(ctx).start())
        inbound = ctx.settings.inbound
        extra.append(f"  IMAP mailbox        {inbound.imap_host}:{inbound.imap_port}/{inbound.imap_folder}")


def _arm_shutdown_watchdog() -> None:
    """Leave the process after the grace period even if a job never returns."""

    def cut_off() -> None:
        log.error("shutdown took longer than %.0f s; exiting, leases release what was in flight",
                  SHUTDOWN_GRACE_SECONDS)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(SHUTDOWN_GRACE_SECONDS, cut_off)
    timer.daemon = True
    timer.start()


def _stop_dispatch() -> None:
    """Tell a running dispatch tick to hand its unsent claimed mails back between two mails."""
    dispatch.request_stop()


def _stop(ctx: AppContext, scheduler: Any, dispatcher: Any, servers: list[Any]) -> None:
    _arm_shutdown_watchdog()
    if scheduler is not None:
        _stop_dispatch()
        log.info("stopping dispatch and the scheduler (waiting for running jobs)")
        dispatcher.stop()
        scheduler.shutdown(wait=True)
        try:
            released = leases.release_all(ctx.db, ctx.worker_id)
            if released:
                log.info("released %d singleton lease(s)", released)
        except Exception as exc:  # the database may be away; the leases then expire on their own
            log.warning("could not release leases: %s", type(exc).__name__)
    for server in reversed(servers):
        server.stop()
    ctx.db.dispose()
    log.info("mailflow stopped")


def run_daemon(ctx: AppContext, role: str = "all") -> int:
    servers: list[Any] = []
    scheduler = dispatcher = None
    extra: list[str] = []
    try:
        if role in ("all", "worker"):
            _start_mail_servers(ctx, servers, extra)
            scheduler = build_scheduler(ctx)
            dispatcher = DispatchLoop(ctx)
            scheduler.start()
            dispatcher.start()
        _banner(ctx, role, extra)
        if role in ("all", "web"):
            app = create_app(ctx)
            config = uvicorn.Config(app, host=ctx.settings.http.host, port=ctx.settings.http.port,
                                    log_level="info", access_log=False, timeout_graceful_shutdown=20,
                                    **server_options(ctx.settings))
            # uvicorn re-raises the signal it caught after its own shutdown; under the default SIGTERM
            # action that would end the process before the finally below stops dispatch cleanly.
            signal.signal(signal.SIGTERM, lambda *_: None)
            uvicorn.Server(config).run()  # returns after SIGTERM/SIGINT
        else:
            wait_for_signal()
    finally:
        _stop(ctx, scheduler, dispatcher, servers)
    return 0


def wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT (the worker role has no HTTP server to do it)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("stop signal received")
