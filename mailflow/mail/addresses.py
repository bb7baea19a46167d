"""What an e-mail address is to mailflow: ONE normal form, made where an address enters (registration,
shared sign-up, the support correction), and ONE comparison key used wherever addresses meet (accounts,
tokens, the outbox, the suppression list, lookups, inbound matching).

- ``normalize(typed)`` is what is stored and mailed to: email-validator's syntax check (no DNS), the
  domain lower-cased in its IDNA ASCII form (``a@ｘ.tw`` -> ``a@x.tw``, ``a@例え.jp`` ->
  ``a@xn--r8jz45g.jp``), so the To header stays plain ASCII and one mailbox has one spelling.
  Full-width ASCII (a Chinese input method in full-width mode types ``ａｂｃ＠ｇｍａｉｌ．ｃｏｍ``) is read as
  ASCII first. Refused: anything that is no address; a local part with non-ASCII letters — delivering it
  needs SMTPUTF8 from every relay on the way, which we cannot promise, so we say so instead of failing
  later; and an RFC 2047 encoded word as the local part (``=?utf-8?b?…?=@x.tw``: a header trick, no
  mailbox).
- ``key(address)`` is the lower-cased normal form. An address that does not normalize (a bounce or a
  search may name anything) is only trimmed and lower-cased, so the key never fails.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

# U+FF01..U+FF5E are the full-width forms of ASCII '!'..'~'; U+3000 the full-width space.
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[bBqQ]\?.*\?=")


class AddressRefused(ValueError):
    """``reason``: "email" (not an address) or "email_local_ascii" (non-ASCII before the @)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize(typed: str) -> str:
    """The stored form of a typed address (see the module docstring); raises AddressRefused."""
    text = typed.translate(_FULLWIDTH).strip()
    local = text.rpartition("@")[0]
    if not local.isascii():
        raise AddressRefused("email_local_ascii")
    if _ENCODED_WORD.search(local):
        raise AddressRefused("email")
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise AddressRefused("email") from None
    ascii_email = checked.ascii_email
    if ascii_email is None:  # cannot happen with allow_smtputf8=False; kept for the type checker
        raise AddressRefused("email_local_ascii")
    return str(ascii_email)


def key(address: str) -> str:
    """The comparison form: the normal form lower-cased, or the trimmed text lower-cased when it is no
    address. Plain ASCII is already in normal form but for case, so it skips the validator (dispatch
    computes this for every mail)."""
    text = address.strip()
    if text.isascii():
        return text.lower()
    try:
        return normalize(text).lower()
    except AddressRefused:
        return text.lower()


def mask(address: str) -> str:
    """w***@example.com: enough for the holder to recognise, little for anyone else."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"
