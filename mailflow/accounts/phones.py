"""Taiwanese telephone numbers as clerks type them, read into the one form mailflow stores.

An office number is an area code (區碼) and a subscriber number whose length that area fixes — 02 has
8 digits, 037 has 6, 0826 has 5, 04 has 7 (Changhua) or 8 (Taichung) — optionally followed by an
extension (分機). Clerks write the same number many ways: ``(02)2345-6789#123``, ``(02)23456789``,
``02-2345-6789``, ``0223456789``, ``02 2345 6789``, ``02-23456789 轉123``, ``+886-2-2345-6789 ext 12``.
Only the digits matter: the area code is the longest known prefix of them, so where the clerk put the
dashes, spaces or parentheses changes nothing. A mobile number (09…, 10 digits) is accepted too: many
one-person companies have no landline.

The stored form is ``<area>-<subscriber>[#<extension>]`` (the seed's own example: 02-12345678#12345),
and a mobile as its 10 digits (0912345678), like the 手機電話 field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Area code -> allowed lengths of the subscriber number (NCC numbering plan; 070 is VoIP, 0800 and 0809
# toll-free). Prefixes overlap (08 / 082 / 0826, 03 / 037, 04 / 049): the longest one that matches wins.
AREA_CODES: dict[str, tuple[int, ...]] = {
    "02": (8,), "03": (7,), "037": (6,), "04": (7, 8), "049": (7,), "05": (7,), "06": (7,), "07": (7,),
    "08": (7,), "082": (6,), "0826": (5,), "0836": (5,), "089": (6,), "070": (8,), "0800": (6,),
    "0809": (6,),
}
MOBILE_PREFIX = "09"
MOBILE_DIGITS = 10
MAX_EXTENSION_DIGITS = 6

# What input methods and word processors put where ASCII was meant.
_LOOKALIKES = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)},
                             "－": "-", "‐": "-", "‑": "-", "–": "-", "—": "-", "＃": "#", "（": "(",
                             "）": ")", "　": " ", "＋": "+", "ｘ": "x", "Ｘ": "x"})
# The extension at the end: #123, 轉123, 分機123, ext 123, ext.123, x123 (spaces allowed around).
_EXTENSION = re.compile(r"\s*(?:#|轉|分機|ext\.?|x)\s*([0-9]+)\s*$", re.IGNORECASE)
# +886 (the country code) with an optional "(0)" stands for the leading 0 of the area code.
_COUNTRY = re.compile(r"^\+\s*886\s*-?\s*(?:\(\s*0\s*\))?\s*-?\s*")
# The number itself: digits, spaces and dashes, with at most one (…) pair, around the area code at the
# start.
_NUMBER = re.compile(r"(?:\(\s*[0-9]{1,4}\s*\))?[0-9 \-]*")


@dataclass(frozen=True)
class PhoneProblem:
    """Why a number was refused: ``kind`` is "format", or "length" with the area code and its lengths."""

    kind: str
    area: str = ""
    lengths: tuple[int, ...] = ()


def normalize_office_phone(value: str) -> str | PhoneProblem:
    """The stored form of an office (or mobile) number, or the problem with it."""
    text = value.translate(_LOOKALIKES).strip()
    extension = ""
    found = _EXTENSION.search(text)
    if found:
        extension, text = found.group(1), text[:found.start()]
    text = _COUNTRY.sub("0", text, count=1).strip()
    if not text or not _NUMBER.fullmatch(text) or len(extension) > MAX_EXTENSION_DIGITS:
        return PhoneProblem("format")
    digits = re.sub(r"[^0-9]", "", text)
    if digits.startswith(MOBILE_PREFIX) and not extension:
        return digits if len(digits) == MOBILE_DIGITS else PhoneProblem("format")
    area = next((digits[:n] for n in (4, 3, 2) if digits[:n] in AREA_CODES), None)
    if area is None:
        return PhoneProblem("format")
    subscriber = digits[len(area):]
    if len(subscriber) not in AREA_CODES[area]:
        return PhoneProblem("length", area, AREA_CODES[area])
    return f"{area}-{subscriber}" + (f"#{extension}" if extension else "")
