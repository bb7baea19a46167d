"""Whatever a caller sends to the Notifications API gets a documented answer, never a 500, and a
refused request leaves nothing behind."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from mailflow.context import AppContext
from mailflow.models import Notification, OutboxMessage
from tests.factories import verified_account
from tests.notify.conftest import PASS_ISSUED, issue_key
from tests.scale.test_api_fuzz import documented_error

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
FIELDS = st.fixed_dictionaries({}, optional={
    "template": st.sampled_from(["pass-issued", "pass-expiring", "registration-received", "", "../x"]) | JSON,
    "account": st.sampled_from(["example1234", "EXAMPLE1234", "nobody", ""]) | JSON,
    "email_address": st.sampled_from(["a@example.com", "not an address", "ａ@ｘ.tw"]) | JSON,
    "personalisation": st.just(PASS_ISSUED) | st.dictionaries(st.sampled_from([*PASS_ISSUED, "x"]),
                                                              st.text(max_size=40) | JSON, max_size=8) | JSON,
    "reference": st.text(max_size=220) | JSON,
    "extra": JSON,
})


def counts(ctx: AppContext) -> tuple[int, int]:
    with ctx.db.session() as session:
        return (session.scalar(select(func.count()).select_from(Notification)) or 0,
                session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def test_any_body_gets_a_documented_answer(ctx: AppContext, client: TestClient) -> None:
    verified_account(ctx)
    headers = {"Authorization": f"Bearer {issue_key(ctx, rate=1_000_000)}"}
    answered: set[int] = set()

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(body=FIELDS | JSON, key=st.none() | st.text(max_size=220))
    def post(body: Any, key: str | None) -> None:
        before = counts(ctx)
        sent = dict(headers)
        if key is not None and key.isascii() and key.isprintable():
            sent["Idempotency-Key"] = key
        answer = client.post("/api/v1/notifications", content=json.dumps(body), headers={
            **sent, "Content-Type": "application/json"})
        assert answer.status_code < 500, answer.text
        answered.add(answer.status_code)
        if answer.status_code == 201:
            assert set(answer.json()) == {"id", "status", "reference"}
        else:
            assert documented_error(answer.json()), answer.text
            assert counts(ctx) == before  # a refusal stores nothing

    post()
    body = {"template": "pass-issued", "account": "example1234", "personalisation": PASS_ISSUED}
    answered.add(client.post("/api/v1/notifications", json=body, headers=headers).status_code)
    assert {201, 422} <= answered  # both kinds of answer were really reached
