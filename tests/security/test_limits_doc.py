"""docs/DEPLOY.md's table of limits is written from the code: this module renders it from the constants
(and the settings' defaults) and the test fails when the page says anything else, or when a module that
holds limits gains one the table does not name. After changing a limit:

    python -m tests.security.test_limits_doc      # rewrites the table in docs/DEPLOY.md
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from mailflow.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "DEPLOY.md"
BEGIN = ("<!-- limits: generated from the code by tests/security/test_limits_doc.py "
         "(python -m tests.security.test_limits_doc); do not edit by hand -->")
END = "<!-- /limits -->"

# The modules whose module-level limits the table must name, and the names there that are no limit on
# what a requester may do (an id scheme, a page size, …).
MODULES = ("mailflow.accounts.signups", "mailflow.accounts.shared", "mailflow.accounts.throttle",
           "mailflow.accounts.verification", "mailflow.accounts.login", "mailflow.web.staff_auth",
           "mailflow.web.applicant", "mailflow.web.limits", "mailflow.notify.apikeys",
           "mailflow.web.security", "mailflow.models.base", "mailflow.accounts.selfservice")
LIMIT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*(LIMIT|FAILURES|PER_HOUR|LOCK_AFTER|LOCK_FOR|VOID|WAIT|_BYTES|"
                        r"DEPTH|WINDOW|WINDOW_SECONDS|BODY_SECONDS|MAX_AGE_SECONDS|MAX_ROW_ID|PER_SECOND|"
                        r"RESET_AFTER|_TTL|PER_ADDRESS)$")
NOT_LIMITS: frozenset[str] = frozenset({"KiB", "FORM_OVERHEAD_BYTES", "DONE_MAX_AGE_SECONDS"})


def value(name: str) -> object:
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def n(name: str) -> int:
    found = value(name)
    if isinstance(found, timedelta):
        return int(found.total_seconds())
    assert isinstance(found, int | float), name
    return int(found)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % (24 * 3600) == 0 and seconds > 24 * 3600:
        return f"{seconds // (24 * 3600)} days"
    if seconds % 3600 == 0:
        return "1 hour" if seconds == 3600 else f"{seconds // 3600} hours"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} s"


def per(count: str, window: str) -> str:
    """'20 an hour', '3 a day (from 08:00 Taipei time)', '30 per 10 minutes' from two constants' names."""
    seconds = n(window)
    if seconds == 3600:
        return f"{n(count)} an hour"
    if seconds == 24 * 3600:
        return f"{n(count)} a day (from 08:00 Taipei time)"
    return f"{n(count)} per {duration(seconds)}"


def size(count: int) -> str:
    from mailflow.web.limits import size_text

    return size_text(count)


@dataclass(frozen=True)
class Limit:
    what: str
    number: Callable[[Settings], str]
    answer: str
    names: tuple[str, ...]  # the constants (dotted) or settings (section.key) it is read from

    def row(self, settings: Settings) -> str:
        where = ", ".join(f"`{name}`" for name in self.names)
        return f"| {self.what} | {self.number(settings)} | {self.answer} | {where} |"


S = "mailflow.accounts.signups."
B = "mailflow.accounts.shared."
T = "mailflow.accounts.throttle."
V = "mailflow.accounts.verification."
L = "mailflow.web.limits."
G = "mailflow.accounts.registration."
F = "mailflow.accounts.selfservice."
SAME = "the same 202, nothing sent (it tells nobody whether the account exists)"
R = "429 + `Retry-After`"

def counted(what: str, count: str, window: str, answer: str = R) -> Limit:
    """A row of ``count`` requests per ``window`` (two constants' dotted names)."""
    return Limit(what, lambda s: per(count, window), answer, (count, window))


LIMITS: tuple[Limit, ...] = (
    # sign-ups
    counted("Registrations and 共用帳號 sign-ups from one client address (refused ones count)",
            S + "CLIENT_LIMIT", S + "CLIENT_WINDOW"),
    counted("Registration and sign-up mails to one address (requests that passed every rule)",
            S + "RECIPIENT_LIMIT", S + "RECIPIENT_WINDOW"),
    counted("帳號 availability checks (`GET /api/account-availability`) from one client address",
            G + "AVAILABILITY_LIMIT", G + "AVAILABILITY_WINDOW_SECONDS"),
    # logins and every other password check
    counted("Password tries for one 帳號 (or staff name) from one client address — logins, verification "
            "links, new verification mails, password and Email changes",
            T + "PAIR_LIMIT", T + "WINDOW_SECONDS"),
    Limit("Password tries from one client address, whatever accounts they name",
          lambda s: (f"{per(T + 'CLIENT_LIMIT', T + 'WINDOW_SECONDS')} (staff: "
                     f"{per(T + 'STAFF_CLIENT_LIMIT', T + 'WINDOW_SECONDS')})"), R,
          (T + "CLIENT_LIMIT", T + "STAFF_CLIENT_LIMIT", T + "WINDOW_SECONDS")),
    Limit("Wrong passwords for one account from anywhere (a growing wait, never a lockout)",
          lambda s: (f"the first {n(T + 'FREE_FAILURES')} free, then each makes the next try wait "
                     f"{duration(n(T + 'FIRST_WAIT'))}, doubling up to {duration(n(T + 'MAX_WAIT'))}; "
                     f"a right password or {duration(n(T + 'RESET_AFTER'))} without a failure start "
                     "afresh"), R,
          (T + "FREE_FAILURES", T + "FIRST_WAIT", T + "MAX_WAIT", T + "RESET_AFTER")),
    # verification
    Limit("Wrong passwords on one verification or binding link",
          lambda s: f"{n(V + 'WRONG_PASSWORDS_VOID')}, then the link is void", "403, then 410",
          (V + "WRONG_PASSWORDS_VOID",)),
    Limit("New verification mails (`POST /api/verification-mails`, `/verify/resend`) for one account",
          lambda s: f"{n(V + 'RESENDS_PER_HOUR')} an hour", "429", (V + "RESENDS_PER_HOUR",)),
    Limit("A verification or binding link is valid for",
          lambda s: f"{s.security.token_ttl_hours:g} hours", "410 after", ("security.token_ttl_hours",)),
    Limit("A login (applicant or staff) lasts",
          lambda s: f"{s.security.session_ttl_hours:g} hours", "signed out after",
          ("security.session_ttl_hours",)),
    Limit("A form's CSRF token is valid for",
          lambda s: duration(n("mailflow.web.security.CSRF_MAX_AGE_SECONDS")),
          "403, the form page asks to send again", ("mailflow.web.security.CSRF_MAX_AGE_SECONDS",)),
    # self-service
    counted("Password-reset and 帳號-reminder requests from one client address (form or API)",
            F + "CLIENT_LIMIT", F + "CLIENT_WINDOW"),
    counted("Password-reset mails to one account", F + "ACCOUNT_LIMIT", F + "ACCOUNT_WINDOW", SAME),
    counted("Reset and reminder mails to one address", F + "ADDRESS_LIMIT", F + "ADDRESS_WINDOW", SAME),
    Limit("Accounts one reset by Email address reaches", lambda s: str(n(F + "MAX_ACCOUNTS_PER_ADDRESS")),
          "the rest get none", (F + "MAX_ACCOUNTS_PER_ADDRESS",)),
    counted("Email-change mails for one account", F + "EMAIL_CHANGE_LIMIT", F + "ACCOUNT_WINDOW", "429"),
    Limit("A password-reset link is valid for", lambda s: duration(n(F + "RESET_TTL")), "410 after",
          (F + "RESET_TTL",)),
    Limit("An Email-change link is valid for", lambda s: duration(n(F + "EMAIL_CHANGE_TTL")), "410 after",
          (F + "EMAIL_CHANGE_TTL",)),
    # bindings
    counted("Binding requests by one 共用帳號 (refused ones count)",
            B + "SHARED_DAILY_LIMIT", B + "DAY_SECONDS"),
    counted("Binding consent mails to one general account, from all 共用帳號",
            B + "GENERAL_DAILY_LIMIT", B + "DAY_SECONDS"),
    # the Notifications API
    Limit("Notifications API requests per key",
          lambda s: (f"{s.api.rate_per_minute} a minute, all at once or spread "
                     f"(`apikey add --rate N` sets a key's own)"), "429 + `Retry-After`",
          ("api.rate_per_minute",)),
    # every request
    Limit("Body of the registration (`POST /api/applications`, `/register`)",
          lambda s: (f"{size(s.storage.max_document_bytes + n(L + 'FORM_OVERHEAD_BYTES'))} "
                     f"(the document's {size(s.storage.max_document_bytes)} + "
                     f"{size(n(L + 'FORM_OVERHEAD_BYTES'))})"),
          "413, naming the document", ("storage.max_document_bytes", L + "FORM_OVERHEAD_BYTES")),
    Limit("Body of a support note", lambda s: size(n(L + "NOTE_BYTES")), "413", (L + "NOTE_BYTES",)),
    Limit("Body of a review decision", lambda s: size(n(L + "REVIEW_BYTES")), "413", (L + "REVIEW_BYTES",)),
    Limit("Body of any other request (from `Content-Length`, and again while it streams)",
          lambda s: size(n(L + "SMALL_BYTES")), "413", (L + "SMALL_BYTES",)),
    Limit("Time to send a body",
          lambda s: (f"{n(L + 'BODY_SECONDS')} s + 1 s per {n(L + 'MIN_BYTES_PER_SECOND')} bytes received"),
          "408", (L + "BODY_SECONDS", L + "MIN_BYTES_PER_SECOND")),
    Limit("JSON nesting", lambda s: f"{n(L + 'MAX_JSON_DEPTH')} levels", "400", (L + "MAX_JSON_DEPTH",)),
    Limit("An id in a path", lambda s: f"1 … {n('mailflow.models.base.MAX_ROW_ID'):,}", "404",
          ("mailflow.models.base.MAX_ROW_ID",)),
    Limit("A mail received by the inbound SMTP server",
          lambda s: size(s.inbound.max_message_bytes), "552", ("inbound.max_message_bytes",)),
)


def render(settings: Settings | None = None) -> str:
    settings = settings or Settings()
    head = ["| limit | value | past it | set in |", "|---|---|---|---|"]
    return "\n".join([BEGIN, *head, *(limit.row(settings) for limit in LIMITS), END])


def documented() -> str:
    text = DEPLOY.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    assert start >= 0 and end > start, f"docs/DEPLOY.md has no generated limits table ({BEGIN})"
    return text[start:end + len(END)]


def test_the_deploy_page_lists_the_limits_as_the_code_has_them() -> None:
    assert documented() == render(), "a limit changed: run python -m tests.security.test_limits_doc"


def test_every_limit_of_the_limit_modules_is_in_the_table() -> None:
    """A new limit constant in one of MODULES fails here until the table names it (by its own name, or
    the name it has where it is defined when a module imports it)."""
    named = {name for limit in LIMITS for name in limit.names}
    attributes = {name.rsplit(".", 1)[1] for name in named}
    missing = [f"{module_name}.{attribute}" for module_name in MODULES
               for attribute, found in vars(importlib.import_module(module_name)).items()
               if LIMIT_NAME.match(attribute) and attribute not in NOT_LIMITS
               and isinstance(found, int | float | timedelta) and attribute not in attributes]
    assert not missing, f"limits not in docs/DEPLOY.md's table (LIMITS here): {missing}"
    for name in named:
        if name.startswith("mailflow."):
            value(name)  # each constant the table names exists


def test_no_proxy_is_believed_unless_named_as_the_page_says(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailflow.web.app import server_options

    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert Settings().http.forwarded_allow_ips == ""
    assert server_options(Settings())["proxy_headers"] is False
    page = " ".join(DEPLOY.read_text(encoding="utf-8").split())
    assert "By default no peer is named" in page and "`http.forwarded_allow_ips`" in page


if __name__ == "__main__":
    text = DEPLOY.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"{DEPLOY}: put {BEGIN} and {END} where the table goes")
    DEPLOY.write_text(text[:start] + render() + text[end + len(END):], encoding="utf-8")
    print(f"{DEPLOY}: limits table rewritten")
