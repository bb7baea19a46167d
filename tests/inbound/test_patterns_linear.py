"""Patterns rewritten so that a hostile line cannot make them quadratic (bench/hostile.py measures the
time) must still say what they said before: the old and the new form compared on random lines made of the
characters that matter to them, and on every line of the bounce corpus."""

from __future__ import annotations

import random
import re

import pytest

from mailflow.inbound import sender_auth
from mailflow.inbound.bounce.detectors import plaintext
from mailflow.inbound.bounce.mailtext import ADDRESS_RE
from tests.inbound.corpus import corpus_dir, flufl_dir

OLD_ADDRESS = re.compile(
    r"[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
OLD_REPLY_LINE = re.compile(r"^\s*(?:<<<|Out:|Received\s*>>>|<-|S:)?\s*([245]\d\d[ -].*)$")
OLD_ADDRESS_LINE = re.compile(
    r"^\s*(?:[*>\-•#]+\s*|(?:recipient|rcpt|address|user)s?\s*:\s*|.*?\bSMTP[=:])?[\"'<\[]?"
    r"((?:\"[^\"]+\"|[^\s<>\"'()\[\]:;,=]+)@" + plaintext._DOMAIN + r")[\"'>\]]?(?![A-Za-z0-9.-]*@)",
    re.I,
)
PAIRS = [
    ("address", OLD_ADDRESS, ADDRESS_RE.compiled(), "search"),
    ("reply line", OLD_REPLY_LINE, plaintext._REPLY_LINE_RE.compiled(), "match"),
    ("address line", OLD_ADDRESS_LINE, plaintext._ADDRESS_LINE_RE.compiled(), "match"),
]
ALPHABET = " \t-*#>•<\"'[]:;,=.@_+x5a0SMTP<<<Out:" + "recipient: " + "rcpt"


def _lines() -> list[str]:
    rng = random.Random(1129)
    made = ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 40))) for _ in range(20000)]
    made += [f"{p}{a}" for p in ("", " ", "- ", "--", "* ", "#", ">>> ", "recipient: ", "x SMTP:")
             for a in ("a@b.example", "-@b.example", "--a@b.example", "<a@b.example>", "a@b.c@d.e")]
    real = []
    for path in sorted(corpus_dir().glob("*.eml")) + sorted(flufl_dir().glob("*.txt")):
        real += path.read_bytes().decode("utf-8", "replace").replace("\r", "").split("\n")
    return made + real


LINES = _lines()


def _said(pattern: re.Pattern[str], how: str, line: str) -> tuple[str, ...] | None:
    found = getattr(pattern, how)(line)
    return None if found is None else (found.group(0), *found.groups())


@pytest.mark.parametrize(("name", "old", "new", "how"), PAIRS, ids=[p[0] for p in PAIRS])
def test_the_linear_form_says_what_the_old_one_said(name: str, old: re.Pattern[str], new: re.Pattern[str],
                                                     how: str) -> None:
    differ = [line for line in LINES if _said(old, how, line) != _said(new, how, line)]
    if name == "address line":
        # the one reading that changed on purpose: a bullet run is never given back to the address
        # ("--@b.example" is the address, not "-@b.example" after a one-dash bullet)
        differ = [line for line in differ if not re.match(r"^\s*[*>\-•#]{2,}@", line)]
    assert differ == [], f"{name}: {len(differ)} lines read differently, e.g. {differ[:3]!r}"
    assert len(LINES) > 20000


OLD_TOKEN = re.compile(r'([A-Za-z0-9][\w.-]*)\s*(?:/\s*\d+\s*)?=\s*("(?:[^"\\]|\\.)*"|[^\s;"]+)')
TOKEN_ALPHABET = 'ab1 =;"\\/.-_\t(dkim=pass spf header.d'
# The one reading that changed on purpose: a token no longer starts right after "_", "." or "-" (no
# RFC 8601 method or property does), so lines with such a start are compared elsewhere.
_STARTS_AFTER_PUNCTUATION = re.compile(r"[_.-][A-Za-z0-9]")


def test_the_authentication_results_tokens_read_as_before() -> None:
    rng = random.Random(8601)
    lines = ["".join(rng.choice(TOKEN_ALPHABET) for _ in range(rng.randrange(1, 60))) for _ in range(20000)]
    lines += [line.partition(":")[2] for line in LINES if line.lower().startswith("authentication-results:")]
    lines += ["mx.example.org; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=a@example.com",
              'x; dkim/1 = "pass" header.i=@example.com (ok); dmarc=fail header.from=example.com']
    compared = [line for line in lines if not _STARTS_AFTER_PUNCTUATION.search(line)]
    new = sender_auth._TOKEN_RE
    differ = [line for line in compared if OLD_TOKEN.findall(line) != new.findall(line)]
    assert differ == [], f"{len(differ)} lines read differently, e.g. {differ[:3]!r}"
    assert len(compared) > 4000

