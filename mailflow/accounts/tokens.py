"""Verification tokens: short opaque strings naming a server-side row that binds them to an account, a
purpose and the exact recipient address, and enforces single use, voiding and expiry (only the SHA-256 of
the string is stored).

Format (issued since issue 17 item 5): ``<id>.<mac>``, 39 characters — ``id`` is 16 random bytes
(22 base64url characters, the row's ``jti``), ``mac`` the first 12 bytes of HMAC-SHA256 over the id with a
key derived from security.secret_key (16 characters). The token says nothing about its account or
address: the binding lives in the row. The MAC lets a made-up or mistyped link be refused without a
query, and means a copy of the database alone (jti column) does not give working links.

Links issued before carry ``<payload>.<signature>``: compact JSON ``{"a","p","e","t","j"}`` in readable
base64url, signed with a per-purpose key. They keep working until they expire (security.token_ttl_hours);
nothing issues them any more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased

from mailflow.config import Settings
from mailflow.mail import addresses
from mailflow.models import Account, Binding, TokenPurpose, VerificationToken
from mailflow.refusals import Refused
from mailflow.timeutil import now

PURPOSES = (TokenPurpose.VERIFY_EMAIL, TokenPurpose.BINDING, TokenPurpose.PASSWORD_RESET,
            TokenPurpose.EMAIL_CHANGE)
MAX_TOKEN_LENGTH = 2048
ID_BYTES = 16
MAC_BYTES = 12
ID_CHARS = 22  # len(base64url(16 bytes)) without padding
MAC_CHARS = 16  # len(base64url(12 bytes))
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

MSG_TAMPERED = "此連結無效或已被修改,請使用信件中的完整連結;若仍無法使用,請重新申請驗證信。"
MSG_EXPIRED = "此連結已逾期,請重新申請驗證信。"
MSG_USED = "此連結已使用過,無法再次使用。如已完成驗證,可直接登入。"
MSG_VOIDED = "此連結已失效(已寄出較新的信件,或密碼輸入錯誤次數過多),請使用最新一封信件中的連結或重新申請。"


class TokenError(Refused):
    """Why a token cannot be used (400, 403, 409, 410), with a ``reason`` such as "expired"."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _purpose_key(settings: Settings, purpose: str) -> bytes:
    return _derived_key(settings.security.secret_key, purpose)


@lru_cache(maxsize=16)
def _derived_key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), f"mailflow-token:{purpose}".encode(), hashlib.sha256).digest()


def _signature(settings: Settings, purpose: str, payload: str) -> str:
    digest = hmac.new(_purpose_key(settings, purpose), payload.encode("ascii"), hashlib.sha256).digest()
    return _b64encode(digest)


def _link_mac(settings: Settings, jti: str) -> str:
    key = _derived_key(settings.security.secret_key, "opaque-link")
    return _b64encode(hmac.new(key, jti.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES])


def make_token(settings: Settings) -> tuple[str, str]:
    """A fresh opaque token and its id (the row's ``jti``)."""
    jti = _b64encode(secrets.token_bytes(ID_BYTES))
    return f"{jti}.{_link_mac(settings, jti)}", jti


def _is_opaque(token: str) -> bool:
    jti, _, mac = token.partition(".")
    return (len(jti) == ID_CHARS and len(mac) == MAC_CHARS and _ALPHABET.issuperset(jti)
            and _ALPHABET.issuperset(mac))


def read_token(settings: Settings, token: str) -> tuple[str, dict[str, Any] | None]:
    """(jti, the legacy payload or None) of a token that is ours; TokenError 400 otherwise. An opaque
    token's binding is only in its row; a legacy one's payload must match its row too."""
    if token and _is_opaque(token):
        jti, _, mac = token.partition(".")
        if not hmac.compare_digest(_link_mac(settings, jti), mac):
            raise TokenError(400, MSG_TAMPERED, "tampered")
        return jti, None
    body = read_signed(settings, token)
    return str(body["j"]), body


def token_id(settings: Settings, token: str) -> str | None:
    """The row id (jti) a token names when it is ours, else None: what a per-link lock is keyed by."""
    try:
        return read_token(settings, token)[0]
    except TokenError:
        return None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def sign_token(settings: Settings, account_id: int, purpose: str, address: str, issued: int, jti: str) -> str:
    body = {"a": account_id, "p": purpose, "e": address, "t": issued, "j": jti}
    payload = _b64encode(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_signature(settings, purpose, payload)}"


def read_signed(settings: Settings, token: str) -> dict[str, Any]:
    """The payload of a legacy (long, signed) token whose signature holds; TokenError 400 otherwise."""
    tampered = TokenError(400, MSG_TAMPERED, "tampered")
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise tampered
    payload, signature = token.split(".")
    try:
        body = json.loads(_b64decode(payload).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise tampered from None
    if not isinstance(body, dict) or body.get("p") not in PURPOSES:
        raise tampered
    if not hmac.compare_digest(_signature(settings, str(body["p"]), payload), signature):
        raise tampered
    shapes = (("a", int), ("e", str), ("j", str))
    if not all(isinstance(body.get(key), kind) for key, kind in shapes):
        raise tampered
    return body


def _open_tokens(account_id: int, purpose: str) -> Any:
    return (VerificationToken.account_id == account_id, VerificationToken.purpose == purpose,
            VerificationToken.used_at.is_(None), VerificationToken.voided_at.is_(None))


def void_tokens(session: Session, account_id: int, purpose: str, binding_id: int | None = None) -> int:
    """Void every open token of ``purpose`` for the account (for binding tokens: of that binding)."""
    conditions = list(_open_tokens(account_id, purpose))
    if binding_id is not None:
        conditions.append(VerificationToken.binding_id == binding_id)
    result = session.execute(update(VerificationToken).where(*conditions).values(voided_at=now()))
    return int(getattr(result, "rowcount", 0) or 0)


def void_tokens_for_address(session: Session, account_id: int, address: str) -> int:
    """Void the account's open tokens that were sent to ``address`` (any purpose), e.g. when the
    account's email changes away from it."""
    result = session.execute(
        update(VerificationToken)
        .where(VerificationToken.account_id == account_id, VerificationToken.used_at.is_(None),
               VerificationToken.voided_at.is_(None),
               func.lower(VerificationToken.address) == addresses.key(address))
        .values(voided_at=now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def issue_token(
    session: Session, settings: Settings, account: Account, purpose: str, address: str,
    binding_id: int | None = None,
) -> tuple[str, VerificationToken]:
    """A fresh token for ``account`` bound to ``address``; older open tokens of the same purpose (and the
    same binding) are voided. Written in the caller's transaction."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    void_tokens(session, account.id, purpose, binding_id if purpose == TokenPurpose.BINDING else None)
    issued = now().replace(microsecond=0)
    token, jti = make_token(settings)
    row = VerificationToken(
        jti=jti, token_hash=token_hash(token), account_id=account.id, purpose=purpose, address=address,
        binding_id=binding_id, issued_at=issued,
        expires_at=issued + timedelta(hours=settings.security.token_ttl_hours),
    )
    session.add(row)
    session.flush()
    return token, row


# Statements are built once: building one and its cache key per request was a third of the query's cost.
_TOKEN_BY_JTI = select(VerificationToken).where(VerificationToken.jti == bindparam("jti"))


def load_token(session: Session, settings: Settings, token: str,
               purposes: tuple[str, ...] | None = None) -> VerificationToken:
    """The stored row of a usable token (of one of ``purposes`` when given: a link made for another
    purpose is 400 like a forged one). TokenError: 400 malformed or tampered, 410 expired, used or
    voided."""
    jti, body = read_token(settings, token)
    row = session.scalar(_TOKEN_BY_JTI, {"jti": jti})
    if row is not None and purposes is not None and row.purpose not in purposes:
        row = None
    return _usable(row, body, token)


class StoredToken(Protocol):
    """What the checks of a usable token read: a VerificationToken row, or a TokenPreview."""

    @property
    def token_hash(self) -> bytes: ...
    @property
    def account_id(self) -> int: ...
    @property
    def purpose(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def used_at(self) -> datetime | None: ...
    @property
    def voided_at(self) -> datetime | None: ...


T = TypeVar("T", bound=StoredToken)


@dataclass(frozen=True)
class TokenPreview:
    """A usable token as the /verify page shows it: its own facts, its account's id and name, and for a
    binding token the shared account that asks (None otherwise). Read-only; nothing to write back."""

    token_hash: bytes
    account_id: int
    purpose: str
    address: str
    expires_at: datetime
    used_at: datetime | None
    voided_at: datetime | None
    account: str
    name: str
    email_key: str  # the account's address now
    shared_account: str | None
    shared_name: str | None


_Shared = aliased(Account)
# One round trip for everything the page shows; the outer joins only find rows for binding tokens.
_PREVIEW = (
    select(VerificationToken.token_hash, VerificationToken.account_id, VerificationToken.purpose,
           VerificationToken.address, VerificationToken.expires_at, VerificationToken.used_at,
           VerificationToken.voided_at, Account.account, Account.name, Account.email_key,
           _Shared.account.label("shared_account"), _Shared.name.label("shared_name"))
    .join(Account, Account.id == VerificationToken.account_id)
    .outerjoin(Binding, Binding.id == VerificationToken.binding_id)
    .outerjoin(_Shared, _Shared.id == Binding.shared_account_id)
    .where(VerificationToken.jti == bindparam("jti"))
)


def preview_token(connection: Connection, settings: Settings, token: str) -> TokenPreview:
    """The checks of load_token, for a page that only reads: one Core query on a plain connection (no
    ORM session or identity map: they were most of the /verify page's time). A token whose account is
    gone is tampered (400), like one that was never issued."""
    jti, body = read_token(settings, token)
    found = connection.execute(_PREVIEW, {"jti": jti}).mappings().first()
    return _previewed(found, body, token)


def preview_token_orm(session: Session, settings: Settings, token: str) -> TokenPreview:
    """preview_token the plain way, through the ORM session (the token row, its account, a binding's
    shared account): the reference the Core read must agree with (mailflow.reference)."""
    jti, body = read_token(settings, token)
    row = session.scalar(_TOKEN_BY_JTI, {"jti": jti})
    account = session.get(Account, row.account_id) if row is not None else None
    if row is None or account is None:
        return _previewed(None, body, token)
    binding = session.get(Binding, row.binding_id) if row.binding_id is not None else None
    shared = session.get(Account, binding.shared_account_id) if binding is not None else None
    return _previewed({
        "token_hash": row.token_hash, "account_id": row.account_id, "purpose": row.purpose,
        "address": row.address, "expires_at": row.expires_at, "used_at": row.used_at,
        "voided_at": row.voided_at, "account": account.account, "name": account.name,
        "email_key": account.email_key, "shared_account": shared.account if shared else None,
        "shared_name": shared.name if shared else None,
    }, body, token)


class RowReader(Protocol):
    """What preview_token_on_loop needs of a reader on the event loop: the first row of a statement as a
    mapping, or None. The web's LoopReads (mailflow.web.loopreads) is one; the route hands it in."""

    async def first(self, statement: Any, params: dict[str, Any]) -> Mapping[str, Any] | None: ...


async def preview_token_on_loop(reads: RowReader, settings: Settings, token: str) -> TokenPreview:
    """preview_token through a reader on the event loop (the web's, mailflow.web.loopreads)."""
    jti, body = read_token(settings, token)
    return _previewed(await reads.first(_PREVIEW, {"jti": jti}), body, token)


def _previewed(found: Mapping[Any, Any] | None, body: dict[str, Any] | None, token: str) -> TokenPreview:
    if found is None:
        raise TokenError(400, MSG_TAMPERED, "tampered")
    row = issued_for(TokenPreview(**found), body, token)
    if moved(row.email_key, row):
        # Dead or not: its address is no longer the account's (TokenError.reason "moved"; the page says
        # so, issue 15 item 6). 410 like any dead link, as the contract has it for GET.
        raise TokenError(410, MSG_VOIDED, "moved")
    refuse_dead(row)
    return row


def moved(current_key: str, row: StoredToken) -> bool:
    """Whether the account's address (``current_key``, its email_key) is no longer the token's. An
    Email-change link is bound to the NEW address, which the account only takes when it completes (a
    change of the account's address in between voids it: mailflow.accounts.selfservice)."""
    if row.purpose == TokenPurpose.EMAIL_CHANGE:
        return False
    return current_key != addresses.key(row.address)


def _usable(row: T | None, body: dict[str, Any] | None, token: str) -> T:
    """``row`` when it is the one issued for exactly this ``token`` and is still open (TokenError 400 or
    410 otherwise)."""
    row = issued_for(row, body, token)
    refuse_dead(row)
    return row


def issued_for(row: T | None, body: dict[str, Any] | None, token: str) -> T:
    """``row`` when it was issued for exactly this ``token`` (open or not); TokenError 400 otherwise."""
    tampered = TokenError(400, MSG_TAMPERED, "tampered")
    if row is None or not hmac.compare_digest(bytes(row.token_hash), token_hash(token)):
        raise tampered  # made with our key but not issued from this database: treat as forged
    if body is not None and (row.account_id, row.purpose, row.address) != (body["a"], body["p"], body["e"]):
        raise tampered
    return row


def refuse_dead(row: StoredToken) -> None:
    """TokenError 410 for a used, voided or expired token."""
    if row.used_at is not None:
        raise TokenError(410, MSG_USED, "used")
    if row.voided_at is not None:
        raise TokenError(410, MSG_VOIDED, "voided")
    if row.expires_at <= now():
        raise TokenError(410, MSG_EXPIRED, "expired")


def consume(session: Session, row: VerificationToken) -> bool:
    """Mark the token used; False when another request used or voided it first (a double submit)."""
    moment = now()
    result = session.execute(
        update(VerificationToken)
        .where(VerificationToken.id == row.id, VerificationToken.used_at.is_(None),
               VerificationToken.voided_at.is_(None))
        .values(used_at=moment)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    row.used_at = moment
    return True
