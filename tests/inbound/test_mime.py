"""mailflow.inbound.mime builds the very tree the stdlib's parser builds (compat32), on every mail we have
and on damaged copies of them: headers, payloads, preambles, epilogues and default types, part by part."""

from __future__ import annotations

import email
import random
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from mailflow.inbound import mime
from tests.inbound.corpus import corpus_dir, flufl_dir

HERE = Path(__file__).resolve().parent


def shape(msg: Message) -> tuple[object, ...]:
    payload = msg._payload  # noqa: SLF001  # compared as the parser left it
    inner: object = [shape(p) for p in payload] if isinstance(payload, list) else payload
    return (
        msg.get_unixfrom(),
        tuple(msg._headers),  # noqa: SLF001
        msg.get_default_type(),
        msg.preamble,
        msg.epilogue,
        inner,
    )


def same_tree(raw: bytes) -> None:
    assert shape(mime.message_from_bytes(raw)) == shape(email.message_from_bytes(raw))


def _mails() -> list[Path]:
    found = sorted(corpus_dir().glob("*.eml")) + sorted(flufl_dir().glob("*.txt"))
    return found + sorted((HERE / "samples").glob("*.eml"))


MAILS = _mails()


def test_there_are_mails_to_compare() -> None:
    assert len(MAILS) > 100, "the bounce corpus and flufl.bounce's set are the comparison's ground"


@pytest.mark.parametrize("path", MAILS, ids=lambda p: p.name)
def test_every_mail_gives_the_stdlib_tree(path: Path) -> None:
    raw = path.read_bytes()
    same_tree(raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))  # as analyze() hands it over
    same_tree(raw)  # carriage returns: the stdlib parses, the answer must still be the same


CASES = {
    "no boundary parameter": b"Content-Type: multipart/mixed\n\nhello\n--x\nbody\n",
    "close boundary first": b'Content-Type: multipart/mixed; boundary="x"\n\npre\n--x--\nafter\n',
    "no start boundary": b'Content-Type: multipart/mixed; boundary="x"\n\njust text\n',
    "close boundary missing": b'Content-Type: multipart/mixed; boundary="x"\n\n--x\n\none\n--x\n\ntwo\n',
    "boundary lines in a row": (
        b'Content-Type: multipart/mixed; boundary="x"\n\n--x\n--x\n--x--\n\na\n--x--\n'
    ),
    "preamble of one blank line": b'Content-Type: multipart/mixed; boundary="x"\n\n\n--x\n\na\n--x--\n',
    "epilogue after close": b'Content-Type: multipart/mixed; boundary="x"\n\n--x\n\na\n--x--\nep\nlog\n',
    "close without newline": b'Content-Type: multipart/mixed; boundary="x"\n\n--x\n\na\n--x--',
    "boundary with trailing blanks": b'Content-Type: multipart/mixed; boundary="x"\n\n--x \t\n\na\n--x--  \n',
    "boundary followed by text": b'Content-Type: multipart/mixed; boundary="x"\n\n--xy\n--x\n\na\n--x--\n',
    "nested multipart, epilogues": (
        b'Content-Type: multipart/mixed; boundary="o"\n\n--o\nContent-Type: multipart/alternative;'
        b' boundary="i"\n\n--i\n\nin\n--i--\ninner epilogue\n\n--o\n\nlast\n--o--\n'
    ),
    "nested multipart, same boundary": (
        b'Content-Type: multipart/mixed; boundary="o"\n\n--o\nContent-Type: multipart/mixed;'
        b' boundary="o"\n\n--o\n\nx\n--o--\n'
    ),
    "digest parts": (
        b'Content-Type: multipart/digest; boundary="d"\n\n--d\n\nSubject: one\n\nbody\n--d\n'
        b"Content-Type: text/plain\n\ntwo\n--d--\n"
    ),
    "message/rfc822 holding a multipart": (
        b'Content-Type: multipart/report; boundary="r"\n\n--r\n\nnotice\n--r\n'
        b"Content-Type: message/rfc822\n\n"
        b'Subject: orig\nContent-Type: multipart/mixed; boundary="m"\n\n--m\n\nq\n--m--\n\n--r--\n'
    ),
    "delivery-status last": (
        b'Content-Type: multipart/report; boundary="r"\n\n--r\nContent-Type: message/delivery-status\n\n'
        b"Reporting-MTA: dns; a\n\nFinal-Recipient: rfc822; b@c\nAction: failed\n\n--r--\n"
    ),
    "mbox From line first": b"From someone Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n",
    "From line closing the header": b"Subject: x\nFrom nobody today\n\nbody\n",
    "From line inside the header": b"Subject: x\nFrom nobody today\nTo: a@b\n\nbody\n",
    "header with no name": b"Subject: x\n: nameless\n folded\nTo: a@b\n\nbody\n",
    "continuation first": b" folded first\nSubject: x\n\nbody\n",
    "no blank line before the body": b"Subject: x\nthis is body\nmore\n",
    "folded headers": b"Subject: a\n  b\n\tc\nTo:\n d@e\n\nbody",
    "only headers, no newline": b"Subject: x",
    "empty message/rfc822": b"Content-Type: message/rfc822\n\n",
    "form feed in the body": b"Subject: x\n\npage\x0cbreak\n",
    "non-ASCII bytes": b"Subject: \xe9\xe8\n\n\xff\xfe body \x85 nel\n",
}


@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
def test_made_up_cases_give_the_stdlib_tree(raw: bytes) -> None:
    same_tree(raw)


def _damaged(raw: bytes, rng: random.Random) -> bytes:
    lines = raw.split(b"\n")
    boundaries = [ln for ln in lines if ln.startswith(b"--") and len(ln) > 4]
    where = rng.randrange(len(lines))
    how = rng.randrange(8)
    if how == 0:
        del lines[where]  # a line lost (a header/body blank line, a boundary, ...)
    elif how == 1 and boundaries:
        lines.insert(where, rng.choice(boundaries))  # a boundary line too many or too early
    elif how == 2 and boundaries:
        lines.insert(where, rng.choice(boundaries).rstrip(b"-") + b"--")  # a close boundary early
    elif how == 3:
        return raw[: rng.randrange(len(raw) + 1)]  # cut off anywhere
    elif how == 4:
        lines.insert(where, b"")  # a blank line anywhere
    elif how == 5:
        lines.insert(where, rng.choice([b"From x", b" continued", b": nameless", b"no colon here"]))
    elif how == 6:
        lines[where] = lines[where] + rng.choice([b" ", b"\t", b"--", b"\x0c"])
    else:
        lines.insert(where, b"Content-Type: " + rng.choice([b"message/rfc822", b"multipart/digest"]))
    return b"\n".join(lines)


def _damaged_mails() -> Iterator[bytes]:
    rng = random.Random(20261129)
    for path in MAILS:
        raw = path.read_bytes().replace(b"\r\n", b"\n")
        for _ in range(6):
            once = _damaged(raw, rng)
            yield once
            yield _damaged(once, rng)


def test_damaged_mails_give_the_stdlib_tree() -> None:
    count = 0
    for raw in _damaged_mails():
        same_tree(raw)
        count += 1
    assert count == 12 * len(MAILS) >= 1500


def test_the_comparison_sees_a_difference() -> None:
    """shape() is not blind: the trees of two mails that differ only in where a boundary ends differ."""
    a = CASES["close boundary missing"]
    b = a + b"--x--\n"
    assert shape(email.message_from_bytes(a)) != shape(email.message_from_bytes(b))


def test_the_reference_switch_parses_with_the_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAILFLOW_REFERENCE_PATHS=1 (mailflow.reference.ON): the boundary cutter is not used at all."""
    from mailflow import reference

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the fast path ran")

    monkeypatch.setattr(mime, "_parse", refuse)
    raw = CASES["nested multipart, epilogues"]
    with pytest.raises(AssertionError):
        mime.message_from_bytes(raw)
    monkeypatch.setattr(reference, "ON", True)
    assert shape(mime.message_from_bytes(raw)) == shape(email.message_from_bytes(raw))
