"""Events out: every event type reaches a subscriber's local HTTP receiver in order, each signed so the
`standardwebhooks` package verifies it; a receiver answering 500 for a while still gets every event, once
it recovers; a replayed or re-signed request does not verify; one that keeps failing is disabled; the
pull feed returns the same events."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mailflow.accounts import review, shared, verification
from mailflow.context import AppContext
from mailflow.mail.dispatch import run_dispatch
from mailflow.models import Account, Binding, Event, Notification, OutboxMessage, WebhookSubscriber
from mailflow.notify import webhooks
from mailflow.notify.events import EVENT_TYPES, emit_event, events_after, sequence_pending
from mailflow.passwords import hash_password
from mailflow.support.actions import correct_email
from tests.inbound.test_intake_helpers import dsn
from tests.notify.conftest import Live, issue_key, pass_issued
from tests.notify.receiver import Receiver, start_receiver
from tests.notify.test_notifications import receive
from tests.peers import wait_until
from tests.web.test_register_api import FIELDS, post

PASSWORD = FIELDS["password"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found, server = start_receiver()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def quick(relay: AppContext) -> AppContext:
    """Retries in fractions of a second, so 'a while' of failures fits in a test."""
    relay.settings = relay.settings.updated(webhooks={
        "retry_first_seconds": 0.1, "retry_max_seconds": 0.3, "timeout_seconds": 5})
    return relay


def subscribe(ctx: AppContext, url: str, types: tuple[str, ...] = EVENT_TYPES) -> str:
    with ctx.db.session() as session:
        _row, secret = webhooks.add_subscriber(session, url, list(types))
    return secret


def token_of(ctx: AppContext, template: str, key: str = "verify_url") -> str:
    with ctx.db.session() as session:
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.template == template)
                               .order_by(OutboxMessage.id.desc())).first()
        assert mail is not None, template
        return str(mail.context[key]).rsplit("/", 1)[1]


def verify_with_token(ctx: AppContext, template: str, key: str = "verify_url") -> None:
    token = token_of(ctx, template, key)
    with ctx.db.session() as session:
        verification.complete_verification(session, ctx.settings, token, PASSWORD)


def make_every_event(ctx: AppContext, client: TestClient, live: Live) -> None:
    """The story of the pass system's partners: registrations, review, verification, a binding made and
    ended, an address corrected, notifications sent, refused by the relay and bounced."""
    assert post(client).status_code == 201  # application.submitted
    second = post(client, account="other5678", ubn="12345675", email="other@example.com")
    assert second.status_code == 201
    with ctx.db.session() as session:
        review.approve(session, ctx.settings, 1, "staff:lin")  # application.approved
        review.reject(session, ctx.settings, second.json()["id"], "staff:lin", ["文件模糊"])  # .rejected
    verify_with_token(ctx, "account-approved")  # account.verified
    with ctx.db.session() as session:
        clean = {"account": "shared5678", "name": "陳大文", "mobile": "0912345678",
                 "email": "chen@example.com"}
        partner = shared.create_shared_account(session, clean, hash_password(PASSWORD))
        verification.send_verification_mail(session, ctx.settings, partner, "account-approved")
    verify_with_token(ctx, "account-approved")  # account.verified (the shared account)
    with ctx.db.session() as session:
        partner = session.scalars(select(Account).where(Account.account_key == "shared5678")).one()
        shared.request_binding(session, ctx.settings, partner, "example1234", db=ctx.db)
    verify_with_token(ctx, "binding-request", "confirm_url")  # binding.confirmed
    with ctx.db.session() as session:
        partner = session.scalars(select(Account).where(Account.account_key == "shared5678")).one()
        binding = session.scalars(select(Binding)).one()
        shared.end_binding(session, ctx.settings, binding.id, partner)  # binding.ended
        correct_email(session, ctx.settings, partner.id, "chen.new@example.com", "chen")  # .email_changed
    with live.client(issue_key(ctx)) as api:
        sent = api.post("/api/v1/notifications", json=pass_issued(account="example1234")).json()
        api.post("/api/v1/notifications", json=pass_issued(email_address="refused@example.com"))
        run_dispatch(ctx)  # notification.sent (twice) and notification.failed
    with ctx.db.session() as session:
        mail = session.scalars(select(OutboxMessage)
                               .join(Notification, Notification.outbox_id == OutboxMessage.id)
                               .where(Notification.id == sent["id"])).one()
    receive(ctx, dsn(ctx.settings, mail))  # notification.bounced


def deliver_until(ctx: AppContext, done: Any, what: str, timeout: float = 60) -> None:
    """Run the delivery job as the scheduler does, every few tenths of a second, until ``done()``."""
    wait_until(lambda: (webhooks.deliver_due(ctx), done())[1], timeout, what, every=0.05)


def test_every_event_arrives_signed_in_order_after_the_receiver_recovers(
        quick: AppContext, sink: Any, live: Live, client: TestClient, receiver: Receiver) -> None:
    ctx = quick
    sink.rcpt_replies["refused@example.com"] = "550 5.1.1 no such user"
    secret = subscribe(ctx, receiver.url)
    receiver.failing = True
    make_every_event(ctx, client, live)
    with ctx.db.session() as session:
        sequence_pending(ctx.db)
        expected = [(e.id, e.type, e.account_id) for e in events_after(session, 0, 1000)]
    assert {t for _, t, _ in expected} == set(EVENT_TYPES), "the story makes every event type"

    # Failing for a while: retried (with backoff), always each account's first event, never one behind it.
    firsts: dict[int | None, str] = {}
    for event_id, _type, account_id in expected:
        firsts.setdefault(account_id, event_id)
    deliver_until(ctx, lambda: len(receiver.attempts) >= 4 * len(firsts), "four failed rounds")
    tried = {a.headers["webhook-id"] for a in receiver.attempts}
    assert tried <= set(firsts.values()) and expected[0][0] in tried and receiver.accepted == []
    with ctx.db.session() as session:
        row = session.scalars(select(WebhookSubscriber)).one()
        assert row.failures >= 4 and row.last_failure and row.failing_since and row.disabled_at is None

    receiver.failing = False
    deliver_until(ctx, lambda: _subscriber(ctx).cursor >= len(expected), "every event after recovery")
    accepted = receiver.accepted
    assert len(accepted) == len(expected)  # none lost, none twice (nothing failed after the recovery)
    arrived = [d.headers["webhook-id"] for d in accepted]
    accounts = {event_id: account_id for event_id, _, account_id in expected}
    for account_id in set(accounts.values()):  # each account's events in the order they happened
        assert [i for i in arrived if accounts[i] == account_id] == [
            event_id for event_id, _, owner in expected if owner == account_id]
    hook = Webhook(secret)
    for delivery in accepted:
        body = hook.verify(delivery.body, delivery.headers)
        assert set(body) == {"type", "id", "timestamp", "data"}
        assert body["id"] == delivery.headers["webhook-id"] and body["type"] in EVENT_TYPES
    bodies = [json.loads(d.body) for d in accepted]
    types = [body["type"] for body in bodies]
    # In order per account: the general account's story as it happened.
    story = [b["type"] for b in bodies if b["data"].get("account") == "example1234"]
    assert story[:3] == ["application.submitted", "application.approved", "account.verified"]
    assert story[3:].count("notification.sent") == 1 and story[-1] == "notification.bounced"
    assert types.index("binding.confirmed") < types.index("binding.ended")
    bounced = next(b for b in bodies if b["type"] == "notification.bounced")
    assert bounced["data"]["bounce"] == {"hard": True, "reason": "userunknown", "status": "5.1.1"}
    assert bounced["data"]["account"] == "example1234"
    with ctx.db.session() as session:
        row = session.scalars(select(WebhookSubscriber)).one()
        assert (row.failures, row.failing_since, row.delivered) == (0, None, len(expected))
        assert row.last_success_at and row.last_failure_at


def test_one_accounts_failing_event_holds_only_that_accounts_later_events(quick: AppContext,
                                                                        receiver: Receiver) -> None:
    ctx = quick
    subscribe(ctx, receiver.url, ("account.verified", "account.email_changed"))
    ids = {}
    with ctx.db.session() as session:
        for name in ("good1", "bad22", "good3"):
            account = Account(account=name, account_key=name, name="王小明", mobile="0912345678",
                              email=f"{name}@example.com", email_key=f"{name}@example.com", password_hash="x")
            session.add(account)
            session.flush()
            ids[name] = account.id
        for step in range(3):
            for name in ("good1", "bad22", "good3"):
                emit_event(session, "account.email_changed" if step else "account.verified", ids[name],
                           {"account": name, "step": step})
    receiver.refuse = lambda body: json.loads(body)["data"] == {"account": "bad22", "step": 1}
    deliver_until(ctx, lambda: _subscriber(ctx).failures >= 2, "two failed rounds")
    went_on = [(name, step) for name in ("good1", "good3") for step in range(3)]
    assert sorted(set(_accepted_steps(receiver))) == sorted([*went_on, ("bad22", 0)])  # bad22 waits
    assert _subscriber(ctx).cursor == 4  # events 1-4 delivered with no gap; bad22's step 1 is event 5
    receiver.refuse = None
    deliver_until(ctx, lambda: _subscriber(ctx).cursor == 9, "every event after the fix")
    arrived = _accepted_steps(receiver)
    for name in ("good1", "bad22", "good3"):  # each account's first arrivals in order (repeats dropped)
        steps = [step for account, step in arrived if account == name]
        assert list(dict.fromkeys(steps)) == [0, 1, 2], (name, steps)


def _accepted_steps(receiver: Receiver) -> list[tuple[str, int]]:
    bodies = [json.loads(d.body) for d in receiver.accepted]
    return [(b["data"]["account"], b["data"]["step"]) for b in bodies]


def test_a_replayed_or_resigned_request_does_not_verify(ctx: AppContext) -> None:
    secret = webhooks.new_secret()
    with ctx.db.session() as session:
        emit_event(session, "account.verified", None, {"account": "example1234", "kind": "general"})
    sequence_pending(ctx.db)
    with ctx.db.session() as session:
        event = events_after(session, 0, 10)[0]
    body, headers = webhooks.signed_request(secret, event)
    hook = Webhook(secret)
    assert hook.verify(body, headers)["data"]["account"] == "example1234"
    # A request captured ten minutes ago and sent again now.
    old_body, old_headers = webhooks.signed_request(secret, event, timestamp=int(time.time()) - 600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        hook.verify(old_body, old_headers)
    # ... with its timestamp moved to now: the signature covers the timestamp.
    with pytest.raises(WebhookVerificationError):
        hook.verify(old_body, {**old_headers, "webhook-timestamp": str(int(time.time()))})
    # Re-signed with another secret, and a changed body under the right signature.
    other_body, other_headers = webhooks.signed_request(webhooks.new_secret(), event)
    with pytest.raises(WebhookVerificationError):
        hook.verify(other_body, other_headers)
    with pytest.raises(WebhookVerificationError):
        hook.verify(body.replace(b"example1234", b"attacker999"), headers)
    # Another event's id under this event's signature.
    with pytest.raises(WebhookVerificationError):
        hook.verify(body, {**headers, "webhook-id": "evt_" + "0" * 24})
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32


def test_a_subscriber_that_keeps_failing_is_disabled_and_shown(quick: AppContext, receiver: Receiver,
                                                               live: Live) -> None:
    ctx = quick
    # a second of failing stands for three days
    ctx.settings = ctx.settings.updated(webhooks={"give_up_hours": 1 / 3600})
    subscribe(ctx, receiver.url, ("account.verified",))
    receiver.failing = True
    with ctx.db.session() as session:
        for n in range(3):
            emit_event(session, "account.verified", None, {"account": f"user{n}", "kind": "general"})
            emit_event(session, "application.submitted", None, {"account": f"user{n}"})  # not subscribed
    deliver_until(ctx, lambda: _subscriber(ctx).disabled_at is not None, "the subscriber disabled")
    row = _subscriber(ctx)
    assert row.disabled_reason and "HTTP 500" in row.disabled_reason
    attempts = len(receiver.attempts)
    webhooks.deliver_due(ctx)
    assert len(receiver.attempts) == attempts  # a disabled subscriber is left alone
    from mailflow.cli import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAILFLOW_DATABASE__URL", ctx.settings.database.url)
        shown = _run(main, ["webhook", "list"])
        assert "DISABLED" in shown and "HTTP 500" in shown and receiver.url in shown
        metrics = live.client().get("/metrics").text
        assert 'mailflow_webhook_enabled{subscriber="1"} 0.0' in metrics
        receiver.failing = False
        assert "resumes" in _run(main, ["webhook", "enable", "1"])
    deliver_until(ctx, lambda: len(receiver.accepted) == 3, "the three events after enabling")
    assert [json.loads(d.body)["data"]["account"] for d in receiver.accepted] == ["user0", "user1", "user2"]
    assert 'mailflow_events{type="account.verified"} 3.0' in live.client().get("/metrics").text


def _subscriber(ctx: AppContext) -> WebhookSubscriber:
    with ctx.db.session() as session:
        return session.scalars(select(WebhookSubscriber)).one()


def _run(main: Any, args: list[str]) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


def test_the_feed_pages_the_same_events(ctx: AppContext, live: Live) -> None:
    with ctx.db.session() as session:
        for n in range(7):
            emit_event(session, "account.verified", None, {"account": f"user{n}", "kind": "general"})
    with live.client(issue_key(ctx, "feed", ("events",))) as api:
        seen: list[str] = []
        cursor = ""
        while True:
            page = api.get("/api/v1/events", params={"after": cursor, "limit": "3"}).json()
            seen += [e["data"]["account"] for e in page["events"]]
            assert all(set(e) == {"type", "id", "timestamp", "data"} for e in page["events"])
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        assert seen == [f"user{n}" for n in range(7)]
        assert api.get("/api/v1/events", params={"after": cursor}).json()["events"] == []
        with ctx.db.session() as session:
            emit_event(session, "account.email_changed", None, {"account": "user3"})
        later = api.get("/api/v1/events", params={"after": cursor}).json()
        assert [e["type"] for e in later["events"]] == ["account.email_changed"]
        assert api.get("/api/v1/events", params={"after": "x"}).status_code == 422


def test_concurrent_writers_and_sequencers_lose_no_event_and_repeat_none(ctx: AppContext) -> None:
    """Events committed in any order, numbered by several sequencers at once, read by a cursor: each is
    read exactly once, and the numbers are 1..N without a gap."""
    writers, per_writer = 24, 5
    stop = threading.Event()
    seen: list[str] = []
    gate = threading.Barrier(writers)

    def write(n: int) -> None:
        gate.wait()
        for i in range(per_writer):
            with ctx.db.session() as session:
                emit_event(session, "account.verified", None, {"account": f"w{n}-{i}"})
                session.flush()
                time.sleep(0.002 * ((n + i) % 4))  # commit late sometimes: ids commit out of order

    def sequence() -> None:
        while not stop.is_set():
            sequence_pending(ctx.db)

    def read() -> None:
        cursor = 0
        while True:
            done = stop.is_set()
            with ctx.db.session() as session:
                found = events_after(session, cursor, 50)
            seen.extend(e.id for e in found)
            cursor = found[-1].seq if found else cursor
            if done and not found:
                return

    with ThreadPoolExecutor(writers + 5) as pool:
        helpers = [pool.submit(sequence) for _ in range(4)] + [pool.submit(read)]
        list(pool.map(write, range(writers)))
        wait_until(lambda: _unnumbered(ctx) == 0, 30, "every event numbered")
        stop.set()
        for future in helpers:
            future.result()
    with ctx.db.session() as session:
        rows = session.execute(select(Event.public_id, Event.seq).order_by(Event.seq)).all()
    assert [seq for _, seq in rows] == list(range(1, writers * per_writer + 1))
    assert sorted(seen) == sorted(public_id for public_id, _ in rows)
    assert len(seen) == len(set(seen))


def _unnumbered(ctx: AppContext) -> int:
    with ctx.db.session() as session:
        return len(session.scalars(select(Event.id).where(Event.seq.is_(None))).all())
