"""Issue 13, finding 11 (second half): a signed-in staff member's CSRF token is bound to that session.

The double-submit cookie alone is beaten by anyone who can plant a cookie in the staff member's browser
(a sibling subdomain, a proxy on plain http): they plant a token of their own, minted by us for them, and
submit it from their page. Bound to the staff session cookie, such a token no longer passes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.models import SupportNote
from mailflow.web.security import CSRF_COOKIE
from tests.factories import make_item, make_staff, sign_in


def token_of(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def notes(ctx: AppContext) -> list[str]:
    with ctx.db.session() as session:
        return [n.text for n in session.scalars(select(SupportNote).order_by(SupportNote.id))]


def test_a_planted_token_from_outside_the_session_is_refused(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        staff = make_staff(session, "chen", "support")
        item_id = make_item(session).id
        session.expunge(staff)
    sign_in(client, ctx.settings, staff)

    # The attacker's own token, minted by us for a browser without a staff session: valid on its own.
    attacker = TestClient(client.app)
    planted = token_of(attacker, "/staff/login")
    client.cookies.set(CSRF_COOKIE, planted)
    forged = client.post(f"/support/items/{item_id}/note", data={"text": "planted", "csrf_token": planted},
                         follow_redirects=False)
    assert forged.status_code == 403 and "表單已過期" in forged.text

    # Another staff session's token is refused too.
    with ctx.db.session() as session:
        other = make_staff(session, "wu", "support")
        session.expunge(other)
    colleague = TestClient(client.app)
    sign_in(colleague, ctx.settings, other)
    theirs = token_of(colleague, f"/support/items/{item_id}")
    client.cookies.set(CSRF_COOKIE, theirs)
    assert client.post(f"/support/items/{item_id}/note", data={"text": "theirs", "csrf_token": theirs},
                       follow_redirects=False).status_code == 403

    # The page shows this session a token of its own, and that one works.
    client.cookies.delete(CSRF_COOKIE)
    own = token_of(client, f"/support/items/{item_id}")
    done = client.post(f"/support/items/{item_id}/note", data={"text": "mine", "csrf_token": own},
                       follow_redirects=False)
    assert done.status_code == 303
    assert notes(ctx) == ["mine"]


def test_a_token_from_before_the_sign_in_does_not_outlive_it(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        staff = make_staff(session, "chen", "support")
        item_id = make_item(session).id
        session.expunge(staff)
    before = token_of(client, "/staff/login")
    sign_in(client, ctx.settings, staff)
    client.cookies.set(CSRF_COOKIE, before)
    assert client.post(f"/support/items/{item_id}/note", data={"text": "old", "csrf_token": before},
                       follow_redirects=False).status_code == 403
    assert notes(ctx) == []
