"""The one way to run a live mailflow for a browser: ``live_site`` (a real uvicorn on a free port of
127.0.0.1 serving create_app(ctx) in capture mode, the capture SMTP server, the inbound SMTP server and a
dispatch loop, so mails really travel) and ``page`` (Debian's chromium driven by Playwright for Python).

Other test folders use these fixtures by importing them (the functions carry a ``_fixture`` suffix so
the import does not shadow local names): ``from browser.conftest import browser_fixture, live_site_fixture,
page_fixture``.
Chromium missing: the browser tests are skipped on a workstation but FAIL in CI (``CI`` set).
Screenshots of each step go to test-artifacts/browser/; with MAILFLOW_SCREENSHOTS=docs the chosen ones
are also written to docs/screenshots/ (scripts/screenshots.sh).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.models import CapturedMail, OutboxMessage
from tests.peers import require_program

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
# A closed network: nothing may call home, and chromium must not need a sandbox or a GPU in a container.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MAILFLOW_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
DISPATCH_EVERY_SECONDS = 0.2
# How long a test waits for something that happens in the background (a mail) before it fails.
WAIT_SECONDS = 30.0
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
SMALL_PHONE = {"width": 320, "height": 640}


@dataclass
class LiveSite:
    """A running mailflow: ``url`` for the browser, ``ctx`` for looking into the database."""

    url: str
    ctx: AppContext
    inbound_port: int
    shots: list[Path] = field(default_factory=list)

    def mails(self) -> list[CapturedMail]:
        with self.ctx.db.session() as session:
            return list(session.scalars(select(CapturedMail).order_by(CapturedMail.id)))

    def wait_for_mail(self, template: str, to: str) -> CapturedMail:
        """The first mail made from ``template`` that reached the capture server for ``to`` (told apart by
        the Message-ID its outbox row gave it: a subject may vary, e.g. for a shared account)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            with self.ctx.db.session() as session:
                ours = set(session.scalars(select(OutboxMessage.message_id).where(
                    OutboxMessage.template == template, OutboxMessage.to_key == to.lower())))
            for mail in self.mails():
                if mail.message_id in ours and to.lower() in [r.lower() for r in mail.rcpt_tos]:
                    return mail
            time.sleep(0.1)
        subjects = [m.subject for m in self.mails()]
        raise AssertionError(f"no {template} mail to {to} arrived; captured: {subjects}")


def staff_login(page: Any, site: LiveSite, path: str, name: str, password: str) -> None:
    """Open a staff page, get sent to /staff/login, sign in and land back on ``path``."""
    from playwright.sync_api import expect

    page.goto(f"{site.url}{path}")
    expect(page).to_have_url(re.compile(re.escape(f"{site.url}/staff/login?next=")))
    page.fill("#name", name)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("form[action='/staff/login'] button[type=submit]")
    expect(page).to_have_url(f"{site.url}{path}")


def _serve(ctx: AppContext) -> tuple[Any, threading.Thread, int]:
    import uvicorn

    from mailflow.web.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="live-uvicorn", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    return server, thread, int(server.servers[0].sockets[0].getsockname()[1])


def _dispatch_loop(ctx: AppContext, stop: threading.Event) -> None:
    from mailflow.mail.dispatch import run_dispatch

    while not stop.is_set():
        try:
            run_dispatch(ctx, stop)
        except Exception:  # the test that waits for the mail reports it; keep the loop alive
            log.exception("live site: dispatch tick failed")
        stop.wait(DISPATCH_EVERY_SECONDS)


@pytest.fixture(name="live_site")
def live_site_fixture(ctx: AppContext) -> Iterator[LiveSite]:
    """mailflow as `mailflow run` would serve it in capture mode, on free ports of 127.0.0.1."""
    from mailflow.inbound.smtp_server import start_inbound_server
    from mailflow.mail.capture import start_capture_server

    ctx.settings = ctx.settings.updated(smtp={"mode": "capture", "port": 0},
                                        inbound={"smtp_host": "127.0.0.1", "smtp_port": 0})
    capture = start_capture_server(ctx)
    inbound = start_inbound_server(ctx)
    server, thread, port = _serve(ctx)
    url = f"http://127.0.0.1:{port}"
    # the links in the mails must lead back to this server
    ctx.settings = ctx.settings.updated(http={"base_url": url})
    stop = threading.Event()
    dispatcher = threading.Thread(target=_dispatch_loop, args=(ctx, stop), name="live-dispatch", daemon=True)
    dispatcher.start()
    try:
        yield LiveSite(url=url, ctx=ctx, inbound_port=inbound.port)
    finally:
        stop.set()
        dispatcher.join()
        server.should_exit = True
        thread.join()
        inbound.stop()
        capture.stop()


def _chromium_or_skip() -> None:
    require_program(CHROMIUM, "chromium")


# Module scope, not session: Playwright's sync API allows one running instance per thread, and a test
# module that starts its own must find none left over from another module.
@pytest.fixture(name="browser", scope="module")
def browser_fixture() -> Iterator[Any]:
    """One chromium per test module; each test gets its own context (cookies, viewport)."""
    _chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        expect.set_options(timeout=WAIT_SECONDS * 1000)  # the 5 s default is short on a busy CI machine
        yield launched
        launched.close()


@pytest.fixture(name="page")
def page_fixture(browser: Any) -> Iterator[Any]:
    """A fresh desktop-sized page in zh-TW and Taipei time; closed (with its cookies) after the test."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-TW", timezone_id="Asia/Taipei")
    context.set_default_timeout(WAIT_SECONDS * 1000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80]


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """``shot(page, "step-name", docs=True)``: save what the page shows now. Every step goes to
    test-artifacts/browser/<test>/; ``docs=True`` steps also to docs/screenshots/ when
    MAILFLOW_SCREENSHOTS=docs (viewport only, so the committed pictures stay small)."""
    folder = ARTIFACTS / _slug(request.node.name)
    counter = iter(range(1, 1000))

    def take(page: Any, name: str, *, docs: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{next(counter):02d}-{_slug(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        if docs and os.environ.get("MAILFLOW_SCREENSHOTS") == "docs":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SCREENSHOTS / f"{_slug(name)}.png"))
        return path

    return take
