"""Signed return paths (VERP): every mail's envelope sender is ``bounce+<id>-<sig>@<mail.bounce_domain>``.

The tag names the outbox row and carries a truncated HMAC-SHA256 of it under ``security.secret_key``, so a
bounce can be tied to its mail and a forged one recognised. The signature is lower-case base32: MTAs may
case-fold local parts, and base32 survives that where base64 would not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from mailflow.config import Settings

PREFIX = "bounce+"
_SIG_BYTES = 10  # 80 bits: 16 base32 characters, far beyond guessing by mail
_TAG = re.compile(r"^(\d{1,18})-([a-z2-7]{16})$")


def _signature(settings: Settings, outbox_id: int) -> str:
    digest = hmac.new(settings.security.secret_key.encode(), f"return-path:{outbox_id}".encode(),
                      hashlib.sha256).digest()
    return base64.b32encode(digest[:_SIG_BYTES]).decode().lower()


def make_tag(settings: Settings, outbox_id: int) -> str:
    return f"{outbox_id}-{_signature(settings, outbox_id)}"


def make_return_path(settings: Settings, outbox_id: int) -> str:
    return f"{PREFIX}{make_tag(settings, outbox_id)}@{settings.mail.bounce_domain}"


def _tag_of(address_or_tag: str) -> str:
    value = address_or_tag.strip().strip("<>").strip()
    local = value.rsplit("@", 1)[0] if "@" in value else value
    if local.lower().startswith(PREFIX):
        local = local[len(PREFIX):]
    return local.lower()


def parse_tag(settings: Settings, address_or_tag: str) -> tuple[int | None, bool]:
    """(outbox id, signature valid) of a return path or bare tag; (None, False) when it is not one of
    ours at all, (id, False) when the id is readable but the signature is forged or from another key."""
    match = _TAG.match(_tag_of(address_or_tag or ""))
    if not match:
        return None, False
    outbox_id = int(match.group(1))
    return outbox_id, hmac.compare_digest(match.group(2), _signature(settings, outbox_id))
