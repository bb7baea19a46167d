"""The bounded hostile-input run over every route (issue 13, findings 7 and 8; the schemathesis run of
tests/scale/test_api_fuzz.py generates valid-looking requests from the schema, this one sends what a
schema never describes): NUL bytes, lone surrogates and invalid UTF-8 in paths, queries, JSON and form
bodies; JSON nested 8,000 and 100,000 deep; ids beyond 64 bits; numbers with thousands of digits; bodies
declared huge, streamed huge, sent slowly, or sent with the wrong content type or a broken multipart
frame. Every route is taken from the app itself (tests.security.live.every_route walks its router,
including the routes left out of the OpenAPI description and the mounted static files), so a new route is
in the run the day it is added. The requests are signed in — a staff admin, a verified 共用帳號, an API
key with every scope, a valid CSRF token in every form — so they reach the handlers rather than the
login redirect, over rows that exist (id 1 of each table the paths name).

It ends with no 5xx on SQLite and on PostgreSQL, and every refused API request answers in the
documented shape. Bounded: about a thousand requests, a few seconds per database."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.models import StaffUser
from mailflow.web import limits
from mailflow.web.security import CSRF_FIELD
from tests.factories import (
    SHARED_PASSWORD,
    add_general,
    add_shared,
    make_applicant,
    make_bounce_item,
    make_mail,
    make_staff,
    sign_in,
)
from tests.scale.test_api_fuzz import documented_error
from tests.security.live import Live, at_once, every_route, live_app, raw_request, read_answer
from tests.security.test_request_limits import stream_chunked

HUGE_NUMBERS = ("99999999999999999999", str(2**64), "-1", "9" * 5000)
HOSTILE_TEXT = ("%00", "%FF%FE", "%ED%A0%80", "x.%C3%A9%E4%B8%AD")
# Field names any route may read, besides those its OpenAPI description names.
FIELDS = ("account", "password", "password_confirm", "email", "name", "mobile", "ubn", "company_phone",
          "company_name", "company_address", "company_owner", "general_account", "note", "reason", "code",
          "q", "next", "template", "personalisation", "reference", "email_address", "current_password",
          "new_password", "address", "item_id", "assignee", "kind", "status", "after", "limit", "to",
          "reasons", "codes", "text", "day", "from", "until", "page")
# Routes that end the signed-in sessions the run relies on go last.
SESSION_ENDING = re.compile(r"logout|/api/session$|password|/api/account/email")


# --- what the run is made of -----------------------------------------------------------------------------


def field_names(app: Any) -> list[str]:
    """FIELDS and every property and parameter name the app's OpenAPI description mentions, but the CSRF
    token (each form carries a valid one, so the request reaches its handler)."""
    names = set(FIELDS)
    spec = app.openapi()
    for schema in spec.get("components", {}).get("schemas", {}).values():
        names.update(schema.get("properties", {}))
    for ops in spec["paths"].values():
        for op in ops.values():
            names.update(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")
    return sorted(names - {CSRF_FIELD})


def fill(template: str, value: str = "1") -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def json_bodies(names: list[str]) -> Iterator[tuple[str, bytes]]:
    def every(value: Any) -> bytes:
        return json.dumps({name: value for name in names}).encode()

    numbers = (2**70, -(2**63) - 1, 1e308, 0, -1, True)
    yield "nul", every("a\u0000b")[:-1] + b', "k\\u0000": 1}'
    yield "lone surrogate", every("\ud800")
    yield "numbers", json.dumps({name: numbers[i % len(numbers)] for i, name in enumerate(names)}).encode()
    yield "4000 digits", b'{"general_account": ' + b"9" * 4000 + b', "after": ' + b"9" * 4000 + b"}"
    yield "nested values", every({"$gt": [None, True, {"x": []}]})
    yield "deep 8000", b'{"account": ' + b"[" * 8000 + b"]" * 8000 + b"}"
    yield "deep 100000", b"[" * 100_000 + b"]" * 100_000
    yield "array", b"[1, 2, 3]"
    yield "not json", b"{'account': nope"
    yield "invalid utf-8", b'{"account": "\xff\xfe", "password": "\xed\xa0\x80"}'
    yield "utf-16", json.dumps({"account": "wang1234", "password": "x"}).encode("utf-16")
    yield "empty", b""


def form_bodies(names: list[str], csrf: str) -> Iterator[tuple[str, str, bytes]]:
    form = "application/x-www-form-urlencoded"

    def every(value: str) -> bytes:
        return "&".join([f"csrf_token={csrf}", *(f"{name}={value}" for name in names)]).encode()

    for value in HOSTILE_TEXT:
        yield f"form {value}", form, every(value)
    yield "form numbers", form, every(HUGE_NUMBERS[0])
    yield "form repeated", form, every("x") + b"&" + every("y")
    yield "form 3000 fields", form, f"csrf_token={csrf}&".encode() + b"&".join(
        b"f%d=" % i for i in range(3000))
    yield "form broken escapes", form, b"csrf_token=" + csrf.encode() + b"&account=%&password=%zz&=%"
    boundary = "xYz"
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n\xff\r\n'
                    for name in ("csrf_token", *names[:20]))
    multipart = f"multipart/form-data; boundary={boundary}"
    yield "multipart text", multipart, (parts + f"--{boundary}--\r\n").encode("latin-1")
    file_part = (f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="../../a.pdf"'
                 f"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\x00\x01\r\n--{boundary}--\r\n")
    yield "multipart file", multipart, file_part.encode("latin-1")
    # past Starlette's 1,000 fields where the body may be that large (the registration's)
    many = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n\r\n'
                   for i in range(1500))
    yield "multipart 1500 parts", multipart, (many + f"--{boundary}--\r\n").encode()
    yield "multipart unterminated", multipart, f"--{boundary}\r\nContent-Disposition: form-data; na".encode()
    yield "multipart no boundary", "multipart/form-data", b"--x\r\n\r\n--x--\r\n"
    yield "multipart empty boundary", "multipart/form-data; boundary=", b"--\r\n\r\n----\r\n"


WRONG_TYPES = ("text/plain", "application/json; charset=utf-7", "a/b; c=\"d",
               "application/x-www-form-urlencoded; charset=utf-16", ";;;")


# --- the signed-in client over seeded rows --------------------------------------------------------------


def seed(ctx: AppContext) -> None:
    """Row 1 of each table a path names: an application and its account, a mail, a bounce and its support
    item; a general and a 共用帳號 (bound to each other by a pending request, below)."""
    with ctx.db.session() as session:
        account, application = make_applicant(session)
        mail = make_mail(session, account)
        make_bounce_item(session, account, application, mail)
        make_staff(session, "root", "admin")
    add_general(ctx, "harbor01", "12345675")
    add_shared(ctx, "manager01")


@pytest.fixture
def armed(ctx: AppContext) -> Iterator[tuple[TestClient, str]]:
    """A client signed in as staff admin, as a verified 共用帳號 and with an API key of every scope, with a
    CSRF token valid in that staff session."""
    from mailflow.notify import apikeys
    from mailflow.web.app import create_app

    seed(ctx)
    with ctx.db.session() as session:
        _row, key = apikeys.add_key(session, ctx.settings, "hostile", ["notify", "events"])
        staff = session.scalars(select(StaffUser)).one()
        session.expunge(staff)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        sign_in(client, ctx.settings, staff)
        assert client.post("/api/session", json={"account": "manager01", "password": SHARED_PASSWORD}
                           ).status_code == 200
        assert client.post("/api/shared-accounts/bindings", json={"general_account": "harbor01"}
                           ).status_code == 202
        client.headers["Authorization"] = f"Bearer {key}"
        page = client.get("/support")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text[:300]
        yield client, found.group(1)


def ordered(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(routes, key=lambda route: bool(SESSION_ENDING.search(route[1])))


def failures_of(answers: list[tuple[str, Any]]) -> list[str]:
    """Each answer that is a 5xx, or a refused API request not in the documented shape."""
    bad = []
    for where, answer in answers:
        status = answer.status_code
        if status >= 500:
            bad.append(f"{where} -> {status}: {answer.text[:200]}")
        elif status >= 400 and status != 405 and limits.is_api_path(where.split(" ", 2)[1].split("?")[0]):
            try:
                shaped = documented_error(answer.json())
            except ValueError:
                shaped = False
            if not shaped:
                bad.append(f"{where} -> {status} undocumented: {answer.text[:200]}")
    return bad


# --- the run ----------------------------------------------------------------------------------------------


def test_every_route_survives_hostile_urls_bodies_and_content_types(armed: tuple[TestClient, str]) -> None:
    client, csrf = armed
    routes = ordered(every_route(client.app))
    assert len(routes) >= 60, routes
    names = field_names(client.app)
    answers: list[tuple[str, Any]] = []

    # Garbage cookies go from another client: the answers clearing them must not sign this one out.
    stranger = TestClient(client.app, raise_server_exceptions=False)

    def send(method: str, path: str, label: str, by: TestClient = client, **kwargs: Any) -> None:
        answers.append((f"{method} {path} [{label}]", by.request(method, path, **kwargs)))

    for method, template in routes:
        params = re.findall(r"\{[^}]+\}", template)
        for number in HUGE_NUMBERS if params else ():
            send(method, fill(template, number), "id")
        for text in HOSTILE_TEXT if params else ():
            send(method, fill(template, text), "path text")
        send(method, f"{fill(template)}?{'&'.join(f'{n}={HOSTILE_TEXT[1]}' for n in names)}", "query utf-8")
        send(method, f"{fill(template)}?{'&'.join(f'{n}={HUGE_NUMBERS[0]}' for n in names)}&q=%00", "query")
        if method in ("GET", "HEAD", "DELETE"):
            send(method, fill(template), "garbage cookies and headers", by=stranger,
                 headers={"Cookie": "mf_session=%00; mf_staff=" + "A" * 4000 + "; csrf=\"\\\"",
                          "Range": f"bytes={HUGE_NUMBERS[0]}-", "If-Modified-Since": "yesterday",
                          "Accept-Language": "zh-TW;q=" + "9" * 500, "X-Forwarded-For": "%00, ::ffff:x"})
            continue
        # Each family of bodies where the route reads it; to the other family one representative (the
        # middleware refuses it by its type, the same way for every body of that family).
        path = fill(template)
        takes = limits.rule_for(method, path).types
        jsons = list(json_bodies(names))
        forms = list(form_bodies(names, csrf))
        for label, body in jsons if takes & limits.JSON_TYPES else jsons[:1]:
            send(method, path, label, content=body, headers={"content-type": "application/json"})
        for label, kind, body in forms if takes & limits.FORM_TYPES else forms[:1] + forms[-3:-2]:
            send(method, path, label, content=body, headers={"content-type": kind})
        for kind in WRONG_TYPES:
            send(method, path, f"type {kind}", content=b'{"account": "x"}', headers={"content-type": kind})
        send(method, path, "no type", content=b"account=x")
    # The run reached the handlers: the forms' CSRF check ("表單已過期…") refused few of them.
    posted = [answer for where, answer in answers if "[form " in where]
    assert sum("表單已過期" in answer.text for answer in posted) < len(posted) // 4
    assert not failures_of(answers), "\n".join(failures_of(answers))
    assert client.get("/healthz").status_code == 200


# --- sizes and paces, over a live server -----------------------------------------------------------------


@pytest.fixture
def live(ctx: AppContext) -> Iterator[Live]:
    with live_app(ctx) as running:
        yield running


def body_kind(path: str) -> str:
    return "application/json" if path.startswith("/api/") else "application/x-www-form-urlencoded"


def body_routes(app: Any) -> list[tuple[str, str]]:
    return [(m, fill(p)) for m, p in every_route(app) if m in ("POST", "PUT", "PATCH", "DELETE")]


def test_every_route_cuts_a_streamed_body_and_survives_broken_framing(live: Live) -> None:
    from mailflow.web.app import create_app

    routes = body_routes(create_app(live.ctx))
    assert len(routes) >= 25, routes

    def streamed(route: tuple[str, str]) -> tuple[str, int]:
        """Up to 40 MB chunked, far past every route's limit, until the server answers."""
        method, path = route
        answer, _sent = stream_chunked(live, path, body_kind(path), b"a" * 65536, 40 * 2**20, method=method)
        return f"{method} {path} [chunked]", answer.status

    def framed(route: tuple[str, str], label: str, headers: dict[str, str], body: bytes) -> tuple[str, int]:
        method, path = route
        try:
            answer = raw_request(live, method, path, {"Content-Type": body_kind(path), **headers}, body)
        except AssertionError:  # closed without an answer: the server refused the framing itself
            return f"{method} {path} [{label}]", 0
        return f"{method} {path} [{label}]", answer.status

    framings = (("short Content-Length", {"Content-Length": "10"}, b'{"a": "b"} and then more than declared'),
                ("Content-Length of 25 digits", {"Content-Length": "9" * 25}, b"{}"),
                ("negative Content-Length", {"Content-Length": "-1"}, b"{}"),
                ("two Content-Lengths", {"Content-Length": "2, 3"}, b"{}"),
                ("Content-Length and chunked", {"Content-Length": "2", "Transfer-Encoding": "chunked"},
                 b"2\r\n{}\r\n0\r\n\r\n"),
                ("gzip then chunked", {"Transfer-Encoding": "gzip, chunked"}, b"2\r\n{}\r\n0\r\n\r\n"),
                ("bad chunk size", {"Transfer-Encoding": "chunked"}, b"zz\r\n{}\r\n0\r\n\r\n"))
    found = at_once(len(routes), lambda i: streamed(routes[i])) + [
        framed(route, *framing) for route in routes for framing in framings]
    bad = [f"{where} -> {status}" for where, status in found if status >= 500]
    assert not bad, "\n".join(bad)
    cut = [status for _, status in found[:len(routes)]]
    assert cut.count(413) > len(routes) // 2, cut  # most read their body, and cut it


def test_every_route_times_out_a_slow_body(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailflow.web.app import create_app

    monkeypatch.setattr(limits, "BODY_SECONDS", 0.5)
    routes = body_routes(create_app(live.ctx))

    def dribble(route: tuple[str, str]) -> tuple[str, int, float]:
        """Two bytes of a declared 50, then nothing: the route answers (408 when it reads the body; a
        route that refuses before reading answers that) instead of waiting for the rest."""
        method, path = route
        started = time.monotonic()
        with socket.create_connection((live.host, live.port), timeout=20) as sock:
            sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {body_kind(path)}\r\n"
                         "Content-Length: 50\r\n\r\n{".encode())
            return f"{method} {path} [slow]", read_answer(sock).status, time.monotonic() - started

    found = at_once(len(routes), lambda i: dribble(routes[i]))
    bad = [f"{where} -> {status} after {took:.1f} s" for where, status, took in found
           if status >= 500 or took > 10]
    assert not bad, "\n".join(bad)
    assert sum(status == 408 for _, status, _ in found) >= len(routes) // 2  # most read, and time out
    with live.client() as http:
        assert http.get("/healthz").status_code == 200
