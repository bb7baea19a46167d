"""The parser against Sisimai 5's answers, file by file, and measured on mails its rules never saw.

Every mail of the development corpus is pinned: its kind (bounce, complaint or not a bounce), its
failed recipients and each one's reason and hard/soft must be Sisimai's, except for the files in
`KNOWN_DIFFERENCES`, where our own answer is pinned instead and the comment says why we differ.
The leave-one-family-out figures (tests/inbound/lofo.py) are held to floors (the flufl.bounce set too,
in test_bounce_flufl.py) so that a change that only helps the files it was written for shows up as a
failing test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.inbound.analysis import Analysis, analyze
from tests.inbound.corpus import corpus_dir, load_expected, score

CORPUS = corpus_dir()
pytestmark = pytest.mark.skipif(
    not (CORPUS / "expected.json").exists(), reason=f"no bounce corpus at {CORPUS}"
)

# kind, and for each failed recipient (reason, hard)
Pin = tuple[str, dict[str, tuple[str, bool]]]
NOT_A_BOUNCE: Pin = ("not-bounce", {})

# Files where we knowingly answer differently from Sisimai 5: our pinned answer, and why.
KNOWN_DIFFERENCES: dict[str, tuple[Pin, str]] = {
    # The notice says "RCPT TO: 000000000000@vtext.example.com"; Sisimai's answer drops one digit.
    "lhost-apachejames-01.eml": (
        ("bounce", {"000000000000@vtext.example.com": ("filtered", False)}),
        "we report the address the notice names",
    ),
    # Sisimai takes a truncated address out of a mailto: link; the notice's own address line is whole.
    "lhost-office365-04.eml": (
        ("bounce", {"otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp": ("filtered", False)}),
        "we report the address the notice names",
    ),
    # Mimecast notices Sisimai cannot read (its DSN fields are written "Action : failed", with a
    # space before the colon), yet they plainly say the mail could not be delivered to one address.
    "lhost-mimecast-01.eml": (
        ("bounce", {"sabineko@neko.ef.example.org": ("filtered", False)}),
        "a real bounce: customer service should see it",
    ),
    "lhost-mimecast-02.eml": (
        ("bounce", {"sabatora@example.net": ("norelaying", False)}),
        "a real bounce: customer service should see it",
    ),
    # "No MX found for domain" with Status 4.0.0 and Action: delayed: a null-MX domain is permanent
    # for Sisimai whatever the code says; we keep a temporary code soft.
    "lhost-opensmtpd-12.eml": (
        ("bounce", {"neko@nyaan.jp": ("notaccept", False)}),
        "a 4.x.x status is a temporary failure",
    ),
    # "ERROR_CODE :421 ... Host not reachable" in a Zoho notice: nothing says the queue ran out.
    "lhost-zoho-05.eml": (
        ("bounce", {"kijitora@7jo.example.jp": ("onhold", False)}),
        "no expiry is stated",
    ),
    # "542 kijitora@example.com Rejected": no code or word names the cause.
    "rhost-messagelabs-03.eml": (
        ("bounce", {"kijitora@example.com": ("onhold", False)}),
        "nothing names the cause",
    ),
    # "554 5.7.1 Email cannot be delivered. Reason: Email flagged as Spam."
    "rhost-zoho-03.eml": (
        ("bounce", {"kijitora@zoho.example.com": ("spamdetected", False)}),
        "the reply says spam",
    ),
}


def _files() -> list[str]:
    if not (CORPUS / "expected.json").exists():
        return []
    return sorted(load_expected(CORPUS))


def sisimai_pin(want: list[dict[str, object]]) -> Pin:
    if not want:
        return NOT_A_BOUNCE
    kind = "complaint" if any(w["reason"] == "feedback" for w in want) else "bounce"
    return kind, {str(w["recipient"]).lower(): (str(w["reason"]), bool(w["hardbounce"])) for w in want}


def our_pin(result: Analysis) -> Pin:
    if result.kind not in ("bounce", "complaint"):
        return NOT_A_BOUNCE
    return result.kind, {r.address: (r.reason, r.hard) for r in result.recipients}


@pytest.mark.parametrize("name", _files())
def test_pinned(name: str) -> None:
    expected = load_expected(CORPUS)
    got = our_pin(analyze((CORPUS / name).read_bytes()))
    if name in KNOWN_DIFFERENCES:
        assert got == KNOWN_DIFFERENCES[name][0]
    else:
        assert got == sisimai_pin(expected[name])


def test_known_differences_still_differ() -> None:
    expected = load_expected(CORPUS)
    for name, (pin, why) in KNOWN_DIFFERENCES.items():
        assert why
        assert pin != sisimai_pin(expected[name]), f"{name} now agrees with Sisimai: drop it from the list"


def test_whole_corpus_figures() -> None:
    sc = score(CORPUS)
    fig = sc.figures()
    assert fig["recipients"] >= 0.99 and fig["extra"] <= 0.01
    assert fig["hard"] >= 0.98 and fig["reason"] >= 0.97


@pytest.mark.once
def test_leave_one_family_out_floors() -> None:
    """Each family measured with the detectors, provider rules and phrases learned from it switched off."""
    from tests.inbound.lofo import measure

    result = measure(CORPUS)
    fig = result.left_out.figures()
    print(f"\nLOFO {fig}")
    assert fig["recipients"] >= 0.98 and fig["extra"] <= 0.01
    assert fig["hard"] >= 0.965 and fig["reason"] >= 0.87


def _key(raw: bytes) -> object:
    a = analyze(raw)
    return (a.kind, a.recipients, a.message_id, a.subject, a.returned_message_id, a.feedback_type)


@pytest.mark.parametrize("name", _files()[::3])
def test_line_endings_do_not_matter(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    lf = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    expected = _key(lf)
    assert _key(lf.replace(b"\n", b"\r\n")) == expected
    assert _key(lf.replace(b"\n", b"\r")) == expected


def test_cli_prints_one_line_per_file(tmp_path: Path) -> None:
    import io
    import json
    from argparse import Namespace

    from mailflow.cli_bounce import run_parse

    files = [CORPUS / n for n in _files()[:3]] + [tmp_path / "missing.eml"]
    out = io.StringIO()
    assert run_parse(Namespace(files=[str(f) for f in files]), out) == 1  # one file could not be read
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    assert lines[-1]["kind"] == "other"
    for line in lines:
        assert set(line) == {"file", "kind", "recipients"}
        for r in line["recipients"]:
            assert set(r) == {"address", "action", "hard", "reason", "status", "diagnostic"}
