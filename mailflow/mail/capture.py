"""The capture SMTP server of smtp.mode = capture: an embedded aiosmtpd server on 127.0.0.1 that keeps
every message dispatch sends it (a CapturedMail row with the raw bytes), so development and tests go
through real SMTP, the same code path as relay mode. /dev/mailbox shows what it kept."""

from __future__ import annotations

import asyncio
import logging
from email.parser import BytesHeaderParser
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from mailflow.context import AppContext
from mailflow.db import Database
from mailflow.models import CapturedMail

log = logging.getLogger(__name__)


class LocalController(Controller):
    """An aiosmtpd Controller that may bind port 0 and then knows the port the system gave it."""

    def _trigger_server(self) -> None:
        sockets = getattr(self.server, "sockets", None)  # an asyncio.Server once bound
        if sockets:
            self.port = sockets[0].getsockname()[1]
        super()._trigger_server()


def start_controller(handler: Any, port: int = 0, **kwargs: Any) -> LocalController:
    """Start an SMTP server for ``handler`` on 127.0.0.1:``port`` (0 = a free one); ``.port`` is real."""
    # server_hostname avoids aiosmtpd's getfqdn() lookup, which can hang on hosts without DNS.
    kwargs.setdefault("server_hostname", "mailflow.local")
    controller = LocalController(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller


def header_text(raw: bytes, name: str, limit: int) -> str:
    try:
        value = BytesHeaderParser(policy=default).parsebytes(raw).get(name, "")
        return " ".join(str(value).split())[:limit]
    except Exception:  # a header that cannot be decoded still gets its mail stored
        return ""


class CaptureHandler:
    def __init__(self, db: Database) -> None:
        self.db = db

    def store(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> int:
        with self.db.session() as session:
            row = CapturedMail(mail_from=mail_from[:320], rcpt_tos=list(rcpt_tos), raw=raw,
                               subject=header_text(raw, "subject", 500),
                               message_id=header_text(raw, "message-id", 200))
            session.add(row)
            session.flush()
            return row.id

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        raw = with_return_path(envelope.mail_from or "", raw)
        try:
            # The database call blocks: keep it off the event loop so other connections go on.
            await asyncio.get_running_loop().run_in_executor(
                None, self.store, envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        except Exception:
            log.exception("capture: could not store a message")
            return "451 4.3.0 could not store the message, try again"
        return "250 2.0.0 captured"


def with_return_path(mail_from: str, raw: bytes) -> bytes:
    """The message as a mailbox stores it: the final delivery records the envelope sender in a
    Return-Path header on top (RFC 5321 4.4), so the captured mail shows its signed bounce address as a
    real inbox would. aiosmtpd has already refused CR/LF in the address."""
    return f"Return-Path: <{mail_from}>\r\n".encode() + raw


class CaptureServer:
    def __init__(self, controller: LocalController) -> None:
        self.controller = controller

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def stop(self) -> None:
        self.controller.stop()


def start_capture_server(ctx: AppContext) -> CaptureServer:
    """Start the capture server and point dispatch at it (ctx.capture_port becomes the real port)."""
    controller = start_controller(CaptureHandler(ctx.db), ctx.settings.smtp.port, enable_SMTPUTF8=True,
                                  data_size_limit=ctx.settings.inbound.max_message_bytes)
    ctx.capture_port = controller.port
    log.info("capture SMTP server listening on 127.0.0.1:%d", controller.port)
    return CaptureServer(controller)
