"""The Content-Security-Policy of every HTML page, the stricter policies that some answers bring themselves
(a captured mail's HTML, a raw inbound mail, the applicant's document), and no-store on every staff
answer — through the real app, middleware and database."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response

from mailflow.context import AppContext
from mailflow.models import CapturedMail
from mailflow.paths import templates_dir
from mailflow.web.devmailbox import MAIL_HTML_CSP
from mailflow.web.review import DOCUMENT_CSP
from mailflow.web.security import PAGE_CSP
from tests.factories import (
    add_account,
    add_staff,
    add_submitted,
    make_applicant,
    make_bounce_item,
    make_mail,
    staff_login,
)
from tests.web.test_verify import mail_link

PDF = b"%PDF-1.4\n<html><script>alert(document.cookie)</script></html>\n%%EOF\n"


def directives(policy: str) -> dict[str, str]:
    parts = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {name: rest[0] if rest else "" for name, *rest in parts}


def csp_of(answer: Response) -> str:
    values = answer.headers.get_list("content-security-policy")
    assert len(values) == 1, (answer.request.url, values)  # one policy: a second would only narrow it
    return values[0]


def sign_in_admin(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx, name="chen", role="admin")  # an admin may open both /review and /support
    assert staff_login(client, name="chen").status_code == 303


def add_document(ctx: AppContext) -> int:
    application_id = add_submitted(ctx)
    folder = ctx.settings.documents_path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "example1234.pdf").write_bytes(PDF)
    return application_id


def test_the_page_policy_forbids_inline_and_foreign_script() -> None:
    policy = directives(PAGE_CSP)
    assert policy["default-src"] == "'self'"
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert "data:" not in policy["script-src"] and "*" not in policy["script-src"]
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'"
    assert policy["frame-ancestors"] == "'self'"


def test_the_templates_carry_no_inline_script_so_the_policy_needs_none() -> None:
    # A template's onsubmit="..." would silently stop working under script-src 'self'.
    assert directives(PAGE_CSP)["script-src"] == "'self'"
    handlers = [f"{page.name}: {match.group(0)}" for page in (templates_dir() / "web").glob("*.html")
                for match in re.finditer(r'\son[a-z]+="[^"]*"', page.read_text(encoding="utf-8"))]
    assert handlers == []
    inline_scripts = [page.name for page in (templates_dir() / "web").glob("*.html")
                      if re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))[^>]*>",
                                   page.read_text(encoding="utf-8"))]
    assert inline_scripts == []


def test_every_public_html_page_carries_the_policy(ctx: AppContext, client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx))
    for path in ("/register", "/account", "/shared/register", "/staff/login", link, "/verify/not-a-token",
                 "/dev/mailbox"):
        answer = client.get(path)
        assert answer.headers["content-type"].startswith("text/html"), path
        assert csp_of(answer) == PAGE_CSP, path


def test_json_and_static_answers_carry_no_page_policy(client: TestClient) -> None:
    for path in ("/healthz", "/static/register.js", "/static/mailflow.css"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "content-security-policy" not in answer.headers, path


def test_a_captured_mails_html_keeps_its_own_stricter_policy(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        mail = CapturedMail(mail_from="x@example.com", rcpt_tos=["a@example.com"],
                            raw=b"Content-Type: text/html\r\n\r\n<p>hi<script>alert(1)</script></p>")
        session.add(mail)
        session.flush()
        mail_id = mail.id
    answer = client.get(f"/dev/mailbox/{mail_id}/html")
    assert answer.status_code == 200
    assert csp_of(answer) == MAIL_HTML_CSP
    assert "sandbox" in directives(csp_of(answer))


def test_staff_pages_carry_the_policy_and_no_store(ctx: AppContext, client: TestClient) -> None:
    login = client.get("/staff/login")
    assert login.headers["cache-control"] == "no-store"
    application_id = add_document(ctx)
    sign_in_admin(ctx, client)
    for path in ("/review", f"/review/applications/{application_id}", "/review/applications/999999",
                 "/support", "/staff/login"):
        answer = client.get(path)
        assert answer.status_code in (200, 404), path
        assert csp_of(answer) == PAGE_CSP, path
        assert answer.headers.get_list("cache-control") == ["no-store"], path
    export = client.get("/support/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.headers.get_list("cache-control") == ["no-store"]


def test_a_staff_redirect_and_logout_are_not_stored_either(client: TestClient) -> None:
    for path in ("/review", "/support", "/support/export.csv"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers.get_list("cache-control") == ["no-store"], path


def test_the_raw_inbound_mail_keeps_its_sandbox_policy(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        make_bounce_item(session, acc, app, make_mail(session, acc))
    sign_in_admin(ctx, client)
    raw_link = re.search(r'href="(/support/inbound/\d+/raw)"', client.get("/support").text)
    assert raw_link
    raw = client.get(raw_link.group(1))
    assert raw.status_code == 200
    assert csp_of(raw) == "default-src 'none'; sandbox"
    assert raw.headers.get_list("cache-control") == ["no-store"]


def test_the_document_is_served_under_its_own_inert_policy(ctx: AppContext, client: TestClient) -> None:
    application_id = add_document(ctx)
    sign_in_admin(ctx, client)
    for query in ("", "?download=1"):
        answer = client.get(f"/review/applications/{application_id}/document{query}")
        assert answer.status_code == 200 and answer.content == PDF
        policy = directives(csp_of(answer))
        assert csp_of(answer) == DOCUMENT_CSP
        assert policy["default-src"] == "'none'" and "script-src" not in policy  # no script at all
        assert policy["frame-ancestors"] == "'self'"  # the review page may frame it, no other site
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers.get_list("cache-control") == ["private, no-store"]


def test_applicant_pages_keep_their_own_cache_headers(ctx: AppContext, client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx))
    assert client.get(link).headers.get_list("cache-control") == ["no-store"]
    assert "cache-control" not in client.get("/register").headers
