"""`mailflow run`: the HTTP server, the scheduler, the capture SMTP server and the inbound SMTP server in
one process. SIGTERM/SIGINT stop it cleanly: HTTP stops accepting, the scheduler waits for the running
dispatch tick (which finishes or releases its in-flight mails), then the mail servers stop."""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn

from mailflow.context import AppContext

log = logging.getLogger(__name__)


def _banner(ctx: AppContext, extra: list[str]) -> None:
    base = ctx.settings.http.base_url.rstrip("/")
    lines = [
        "mailflow is running:",
        f"  registration form   {base}/register",
        f"  reviewer console    {base}/review",
        f"  support dashboard   {base}/support",
    ]
    if ctx.settings.smtp.mode == "capture":
        lines.append(f"  captured mails      {base}/dev/mailbox")
    lines += extra
    lines.append("  staff login:        mailflow staff add NAME --role reviewer|support|admin")
    print("\n".join(lines), file=sys.stderr, flush=True)


def run_daemon(ctx: AppContext, role: str = "all") -> int:
    from mailflow.web.app import create_app

    servers: list[Any] = []
    scheduler = None
    extra: list[str] = []
    if role in ("all", "worker"):
        if ctx.settings.smtp.mode == "capture":
            from mailflow.mail.capture import start_capture_server

            capture = start_capture_server(ctx)
            servers.append(capture)
            extra.append(f"  capture SMTP        127.0.0.1:{ctx.settings.smtp.port}")
        if ctx.settings.inbound.smtp_port:
            from mailflow.inbound.smtp_server import start_inbound_server

            servers.append(start_inbound_server(ctx))
            extra.append(f"  inbound SMTP        {ctx.settings.inbound.smtp_host}:{ctx.settings.inbound.smtp_port}")
        from mailflow.scheduler import build_scheduler

        scheduler = build_scheduler(ctx)
        scheduler.start()
    try:
        if role in ("all", "web"):
            _banner(ctx, extra)
            app = create_app(ctx)
            config = uvicorn.Config(app, host=ctx.settings.http.host, port=ctx.settings.http.port,
                                    log_level="info", access_log=False, timeout_graceful_shutdown=20)
            uvicorn.Server(config).run()
        else:
            _banner(ctx, extra)
            _wait_for_signal()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        for server in reversed(servers):
            server.stop()
        ctx.db.dispose()
    return 0


def _wait_for_signal() -> None:
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
