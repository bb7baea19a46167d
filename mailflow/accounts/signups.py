"""Mail to an address nobody has verified yet: how often anyone may make us send it, and what of the sender's
own words it may carry.

A registration (一般帳號) or a 共用帳號 sign-up mails whatever address was typed, at once and from our own
name. Without limits ten requests naming a stranger sent the stranger ten official mails in 0.6 s, each
greeting them with whatever the requester typed as 姓名. So:

- per client address: CLIENT_LIMIT sign-ups (of either kind, refused ones included: each costs a form
  parse and often a document) per CLIENT_WINDOW;
- per recipient: RECIPIENT_LIMIT registration or sign-up mails to one address per RECIPIENT_WINDOW,
  counted only for requests that passed every rule, just before their rows are written;
- the mails themselves (registration-received, account-approved, verify-reminder) open with fixed text;
  what the requester typed (姓名, 公司名稱) comes lower, under 申請資料, and is not the To display name
  (``addressee``) while the address is unverified.

Counters are mailflow.ratelimit's (guarded UPDATEs, exact under concurrency on SQLite and PostgreSQL, one
window per key), each taken in a short transaction of its own, so no request waits on another's row lock
while holding its own connection.
"""

from __future__ import annotations

from mailflow import ratelimit
from mailflow.db import Database
from mailflow.mail import addresses
from mailflow.models import Account
from mailflow.refusals import Refused

CLIENT_LIMIT = 20
CLIENT_WINDOW = 3600
RECIPIENT_LIMIT = 3
RECIPIENT_WINDOW = 24 * 3600  # fixed windows from the epoch: this one turns at 08:00 Taipei time

MSG_CLIENT = "此網路位址送出的申請次數過多,請 {minutes} 分鐘後再試;如需協助請洽客服。"
MSG_RECIPIENT = "此Email今天已收到多封註冊通知信,為避免打擾收件人,請明天再試或洽客服。"


class SignupThrottled(Refused):
    """A 429: ``retry_after`` seconds until the window that refused it closes."""

    def __init__(self, message: str, retry_after: int, reason: str) -> None:
        super().__init__(429, message, reason)
        self.retry_after = retry_after


def client_key(client: str | None) -> str:
    return f"signup-client|{client or 'unknown'}"


def recipient_key(address: str) -> str:
    return f"signup-to|{addresses.key(address)}"


def admit_client(db: Database, client: str | None) -> None:
    """Count one sign-up request from ``client``; raises SignupThrottled past CLIENT_LIMIT."""
    with db.session() as session:
        wait = ratelimit.take(session, client_key(client), CLIENT_LIMIT, CLIENT_WINDOW)
    if wait is not None:
        raise SignupThrottled(MSG_CLIENT.format(minutes=max(1, -(-wait // 60))), wait, "client")


def admit_recipient(db: Database, address: str) -> None:
    """Count one mail to ``address`` (a request that passed every rule); raises SignupThrottled past
    RECIPIENT_LIMIT."""
    with db.session() as session:
        wait = ratelimit.take(session, recipient_key(address), RECIPIENT_LIMIT, RECIPIENT_WINDOW)
    if wait is not None:
        raise SignupThrottled(MSG_RECIPIENT, wait, "recipient")


def addressee(account: Account) -> str:
    """The To display name of a mail to ``account``: its 姓名 once its address is verified, else none
    (until then the name is only what a stranger may have typed)."""
    return account.name if account.is_verified else ""
