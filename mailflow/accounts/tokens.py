"""Verification tokens: signed strings bound to an account, a purpose and the exact recipient address,
with a server-side row (only the SHA-256 of the string is stored) that enforces single use, voiding and
expiry.

Format: ``<payload>.<signature>``, both base64url without padding. The payload is compact JSON
``{"a": account id, "p": purpose, "e": address, "t": issued (unix seconds), "j": random id}``; the
signature is HMAC-SHA256 over the payload with a key derived from security.secret_key and the purpose,
so a token made for one purpose never verifies as another.
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
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased

from mailflow.config import Settings
from mailflow.mail import addresses
from mailflow.models import Account, Binding, TokenPurpose, VerificationToken
from mailflow.refusals import Refused
from mailflow.timeutil import now

if TYPE_CHECKING:  # only for the annotation: the web's reader is handed in by the route
    from mailflow.web.loopreads import LoopReads

PURPOSES = (TokenPurpose.VERIFY_EMAIL, TokenPurpose.BINDING, TokenPurpose.PASSWORD_RESET,
            TokenPurpose.EMAIL_CHANGE)
MAX_TOKEN_LENGTH = 2048

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


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def sign_token(settings: Settings, account_id: int, purpose: str, address: str, issued: int, jti: str) -> str:
    body = {"a": account_id, "p": purpose, "e": address, "t": issued, "j": jti}
    payload = _b64encode(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_signature(settings, purpose, payload)}"


def read_signed(settings: Settings, token: str) -> dict[str, Any]:
    """The payload of a token whose signature holds; TokenError 400 otherwise."""
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
    jti = secrets.token_urlsafe(18)
    token = sign_token(settings, account.id, purpose, address, int(issued.timestamp()), jti)
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


def load_token(session: Session, settings: Settings, token: str) -> VerificationToken:
    """The stored row of a usable token. TokenError: 400 malformed or tampered, 410 expired, used or
    voided."""
    body = read_signed(settings, token)
    row = session.scalar(_TOKEN_BY_JTI, {"jti": body["j"]})
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
    shared_account: str | None
    shared_name: str | None


_Shared = aliased(Account)
# One round trip for everything the page shows; the outer joins only find rows for binding tokens.
_PREVIEW = (
    select(VerificationToken.token_hash, VerificationToken.account_id, VerificationToken.purpose,
           VerificationToken.address, VerificationToken.expires_at, VerificationToken.used_at,
           VerificationToken.voided_at, Account.account, Account.name,
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
    body = read_signed(settings, token)
    found = connection.execute(_PREVIEW, {"jti": body["j"]}).mappings().first()
    return _previewed(found, body, token)


async def preview_token_on_loop(reads: LoopReads, settings: Settings, token: str) -> TokenPreview:
    """preview_token through the web's reads on the event loop (mailflow.web.loopreads)."""
    body = read_signed(settings, token)
    return _previewed(await reads.first(_PREVIEW, {"jti": body["j"]}), body, token)


def _previewed(found: Mapping[Any, Any] | None, body: dict[str, Any], token: str) -> TokenPreview:
    if found is None:
        raise TokenError(400, MSG_TAMPERED, "tampered")
    return _usable(TokenPreview(**found), body, token)


def _usable(row: T | None, body: dict[str, Any], token: str) -> T:
    """``row`` when it is the one issued for exactly this signed ``token`` and is still open."""
    tampered = TokenError(400, MSG_TAMPERED, "tampered")
    if row is None or not hmac.compare_digest(bytes(row.token_hash), token_hash(token)):
        raise tampered  # signed by us but not issued from this database: treat as forged
    if (row.account_id, row.purpose, row.address) != (body["a"], body["p"], body["e"]):
        raise tampered
    if row.used_at is not None:
        raise TokenError(410, MSG_USED, "used")
    if row.voided_at is not None:
        raise TokenError(410, MSG_VOIDED, "voided")
    if row.expires_at <= now():
        raise TokenError(410, MSG_EXPIRED, "expired")
    return row


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
