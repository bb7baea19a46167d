"""The inbound SMTP server (aiosmtpd) that receives bounces to bounce+TAG@ addresses and replies.

Only our own domains are accepted as recipients (mail.bounce_domain, the domain of mail.from and of
mail.reply_address): anything else is 550, so this is never an open relay. Mails over
inbound.max_message_bytes are refused with 552. A mail is committed to the database (store) before `250`
is answered; when it cannot be stored the answer is 451 and the sending MTA tries again later. Processing
(route) happens after the answer, on a worker thread, so a slow step never holds the sender; while mails
keep arriving it waits a little (at most MAX_DEFER_SECONDS) so that the intake keeps the CPU.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from email.utils import parseaddr
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.inbound import route
from mailflow.inbound.store import store_mail

log = logging.getLogger(__name__)

QUIET_SECONDS = 0.05
MAX_DEFER_SECONDS = 10.0


def accepted_domains(settings: Settings) -> frozenset[str]:
    domains = {settings.mail.bounce_domain}
    for value in (settings.mail.from_, settings.mail.reply_address):
        address = parseaddr(value)[1]
        if "@" in address:
            domains.add(address.rsplit("@", 1)[1])
    return frozenset(d.strip().lower() for d in domains if d.strip())


class InboundHandler:
    """aiosmtpd handler: RCPT checks the domain, DATA stores and then hands the mail to route."""

    def __init__(self, ctx: AppContext, workers: ThreadPoolExecutor,
                 storers: ThreadPoolExecutor | None = None) -> None:
        self.ctx = ctx
        self.domains = accepted_domains(ctx.settings)
        self.workers = workers  # processing (route), after the answer
        # Storing, before the answer, on threads of its own: in one shared pool a burst of mails queued
        # each store behind the processing of the mails before it (bench/inbound.py: intake fell to a
        # seventh of a bare sink's).
        self.storers = storers or workers
        self.pending: set[Future[str]] = set()
        self.last_data = 0.0  # when the latest DATA began or ended (time.monotonic)

    async def handle_RCPT(self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        domain = address.rsplit("@", 1)[1].strip().lower() if "@" in address else ""
        if domain not in self.domains:
            return "550 5.7.1 Relay denied"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        self.last_data = time.monotonic()
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        try:
            stored = await asyncio.get_running_loop().run_in_executor(
                self.storers, lambda: store_mail(self.ctx.db, raw, "smtp", f"smtp:{peer}",
                                                 envelope.mail_from or "", ",".join(envelope.rcpt_tos)))
        except Exception:
            log.exception("inbound SMTP: could not store a mail from %s; answered 451", peer)
            return "451 4.3.0 Mail not stored, try again later"
        self.last_data = time.monotonic()
        if stored.new:
            future = self.workers.submit(self.process_when_quiet, stored.id, self.last_data)
            self.pending.add(future)
            future.add_done_callback(self.pending.discard)
        return f"250 2.0.0 OK stored as {stored.id}"

    def process_when_quiet(self, inbound_id: int, queued_at: float) -> str:
        """route.process, held back while mails keep arriving: senders wait on the socket for their
        answer, our own processing can wait a moment (never longer than MAX_DEFER_SECONDS, so a steady
        stream is processed all the same). On 2 cores, processing alongside a burst of DATA took the
        CPU the intake needed (bench/inbound.py)."""
        while (time.monotonic() - self.last_data < QUIET_SECONDS
               and time.monotonic() - queued_at < MAX_DEFER_SECONDS):
            time.sleep(QUIET_SECONDS)
        return route.process(self.ctx, inbound_id)


class InboundServer:
    """The running server: ``.port`` is where it listens, ``.stop()`` ends it after pending work."""

    def __init__(self, ctx: AppContext) -> None:
        self.workers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbound-route")
        self.storers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="inbound-store")
        self.handler = InboundHandler(ctx, self.workers, self.storers)
        self.controller = _Controller(self.handler, hostname=ctx.settings.inbound.smtp_host,
                                      port=ctx.settings.inbound.smtp_port,
                                      data_size_limit=ctx.settings.inbound.max_message_bytes,
                                      server_hostname=ctx.settings.mail.bounce_domain)
        self.controller.start()
        self.host = ctx.settings.inbound.smtp_host
        self.port = self.controller.port
        log.info("inbound SMTP listening on %s:%s", self.host, self.port)

    def drain(self) -> None:
        """Wait until every received mail has been processed."""
        for future in list(self.handler.pending):
            future.result()

    def stop(self) -> None:
        self.controller.stop()
        self.storers.shutdown(wait=True)
        self.workers.shutdown(wait=True)


class _Controller(Controller):
    """A Controller that may bind port 0 and learns the port the system chose."""

    def _trigger_server(self) -> None:
        server: Any = self.server
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


def start_inbound_server(ctx: AppContext) -> InboundServer:
    """Start listening on inbound.smtp_host:inbound.smtp_port (0 picks a free port); mails left stored
    but unprocessed by an earlier run are processed first."""
    route.process_pending(ctx)
    return InboundServer(ctx)
