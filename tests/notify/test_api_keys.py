"""API keys: issued once by the CLI, stored hashed, scoped, limited per key (atomically under load),
and every use recorded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from mailflow.cli import main
from mailflow.context import AppContext
from mailflow.models import ApiKey, ApiKeyUse, AuditEvent
from mailflow.notify import apikeys
from tests.factories import verified_account
from tests.notify.conftest import Live, issue_key, pass_issued

AT_ONCE = 24


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def mailflow(ctx: AppContext, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """`mailflow ARGS` as an operator runs it, on the test's database (in this process: fast)."""
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", ctx.settings.database.url)
    monkeypatch.setenv("MAILFLOW_SECURITY__SECRET_KEY", ctx.settings.security.secret_key)

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse refusing the arguments
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def test_the_cli_prints_the_key_once_and_stores_only_its_hash(ctx: AppContext, live: Live,
                                                              mailflow: Callable[..., Ran]) -> None:
    added = mailflow("apikey", "add", "pass-system", "--scope", "notify", "--scope", "events",
                     "--rate", "120")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("mf_") and len(key) >= 40 and "\n" not in key
    assert "shown only now" in added.stderr
    with ctx.db.session() as session:
        row = session.scalars(select(ApiKey)).one()
        assert (row.name, row.scopes, row.rate_per_minute) == ("pass-system", ["events", "notify"], 120)
        assert row.key_hash == apikeys.key_hash(ctx.settings, key) and key.encode() not in row.key_hash
        assert row.prefix == key[:10]
    listed = mailflow("apikey", "list")
    assert "pass-system" in listed.stdout and key not in listed.stdout and key[:10] in listed.stdout
    assert mailflow("apikey", "add", "pass-system").returncode == 1  # names are unique
    assert mailflow("apikey", "add", "bad name").returncode == 2
    assert mailflow("apikey", "add", "x", "--scope", "admin").returncode == 2

    with live.client(key) as api:
        assert api.get("/api/v1/notifications").status_code == 200
        revoked = mailflow("apikey", "revoke", "pass-system")
        assert revoked.returncode == 0, revoked.stderr
        answer = api.get("/api/v1/notifications")
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"]
    assert mailflow("apikey", "revoke", "nobody").returncode == 1
    with ctx.db.session() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"apikey.added", "apikey.revoked"} <= actions


def test_missing_unknown_and_revoked_keys_get_401_wrong_scope_403(ctx: AppContext, live: Live) -> None:
    notify_key = issue_key(ctx, "sender", ("notify",))
    events_key = issue_key(ctx, "listener", ("events",))
    with live.client() as anonymous:
        assert anonymous.post("/api/v1/notifications", json=pass_issued(account="x")).status_code == 401
        for header in ("Basic dXNlcjpwYXNz", "Bearer mf_" + "A" * 43, "Bearer", notify_key):
            assert anonymous.get("/api/v1/events", headers={"Authorization": header}).status_code == 401
        # A key given in another header or the query string is not a key.
        assert anonymous.get(f"/api/v1/notifications?key={notify_key}").status_code == 401
    with live.client(notify_key) as sender, live.client(events_key) as listener:
        forbidden = sender.get("/api/v1/events")
        assert forbidden.status_code == 403 and "events" in forbidden.json()["error"]
        assert listener.post("/api/v1/notifications", json=pass_issued(account="x")).status_code == 403
        assert listener.get("/api/v1/notifications/1").status_code == 403
        assert listener.get("/api/v1/events").status_code == 200
        with ctx.db.session() as session:
            apikeys.revoke_key(session, "listener")
        assert listener.get("/api/v1/events").status_code == 401
    with ctx.db.session() as session:
        found = session.scalars(select(ApiKeyUse).order_by(ApiKeyUse.id))
        uses = [(u.key_id, u.path, u.outcome) for u in found]
        keys = {k.name: k for k in session.scalars(select(ApiKey))}
    sender_id, listener_id = keys["sender"].id, keys["listener"].id
    assert uses == [(sender_id, "/api/v1/events", "forbidden"),
                    (listener_id, "/api/v1/notifications", "forbidden"),
                    (listener_id, "/api/v1/notifications/1", "forbidden"),
                    (listener_id, "/api/v1/events", "allowed"),
                    (listener_id, "/api/v1/events", "revoked")]
    assert (keys["listener"].allowed, keys["listener"].refused) == (1, 3)


def test_the_rate_holds_under_many_requests_at_once(ctx: AppContext, live: Live) -> None:
    verified_account(ctx)
    key = issue_key(ctx, "busy", rate=5)
    other = issue_key(ctx, "quiet", rate=5)
    gate = threading.Barrier(AT_ONCE)
    with live.client(key) as api:

        def post(n: int) -> tuple[int, str | None]:
            gate.wait()
            body = pass_issued(account="example1234", reference=f"r{n}")
            answer = api.post("/api/v1/notifications", json=body)
            return answer.status_code, answer.headers.get("retry-after")

        with ThreadPoolExecutor(AT_ONCE) as pool:
            answers = list(pool.map(post, range(AT_ONCE)))
    codes = sorted(code for code, _ in answers)
    assert codes == [201] * 5 + [429] * (AT_ONCE - 5)
    waits = [int(wait) for code, wait in answers if code == 429 and wait is not None]
    assert len(waits) == AT_ONCE - 5 and all(1 <= wait <= 12 for wait in waits)  # 5 a minute: one per 12 s
    with live.client(other) as api:  # another key has its own rate
        assert api.get("/api/v1/notifications").status_code == 200
        metrics = api.get("/metrics").text
    assert 'mailflow_api_requests_total{key="busy",outcome="allowed"} 5.0' in metrics
    assert f'mailflow_api_requests_total{{key="busy",outcome="rate_limited"}} {AT_ONCE - 5}.0' in metrics
    assert 'mailflow_api_requests_total{key="quiet",outcome="allowed"} 1.0' in metrics
    with ctx.db.session() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.name == "busy")).one()
        outcomes = sorted(session.scalars(select(ApiKeyUse.outcome).where(ApiKeyUse.key_id == row.id)))
        from mailflow.models import Notification

        sent = len(session.scalars(select(Notification.id)).all())
    assert (row.allowed, row.rate_limited) == (5, AT_ONCE - 5)
    assert outcomes == ["allowed"] * 5 + ["rate_limited"] * (AT_ONCE - 5)
    assert sent == 5


def test_the_turns_come_back_at_the_keys_pace(ctx: AppContext) -> None:
    key = issue_key(ctx, "paced", rate=60)  # one a second, 60 at once
    with ctx.db.session() as session:
        key_id = session.scalars(select(ApiKey.id)).one()
    start = 1_000_000.0
    with ctx.db.session() as session:
        assert all(apikeys.take_turn(session, key_id, start) for _ in range(60))
        assert not apikeys.take_turn(session, key_id, start)
        assert not apikeys.take_turn(session, key_id, start + 0.5)
        assert apikeys.take_turn(session, key_id, start + 1.0)
        assert not apikeys.take_turn(session, key_id, start + 1.0)
        assert apikeys.take_turn(session, key_id, start + 100)  # idle time refills the burst, no more
    assert key.startswith("mf_")
