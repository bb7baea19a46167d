"""What a lab test asserts about one DSN, in two steps that fail separately:

- ``wrote``: the MTA really produced this failure — one DSN came back to the cell's sender, and its
  delivery-status part (read with the standard library, not mailflow) names the cell's recipient with
  the Action and Status pinned for that MTA; an MTA that writes plain text (DMA) has no such part, and
  its text holds the lines pinned for it instead. This is the lab's ground truth; it never carries an
  xfail.
- ``parsed``: mailflow's parser (``analyze``) reads the same DSN as a bounce of exactly that recipient,
  with the action the MTA wrote, the failure we caused (reason, hard or soft) and the status: the
  pinned one, or — where the MTA wrote only a class (x.0.0) — nothing or a code of the same class that
  the diagnostic gives; for a plain-text report, the enhanced code of the reply it quotes, if any.
  Where the parser is wrong today the test module marks the cell ``xfail(strict=True, reason="parser:
  …")``.
"""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from email import policy
from email.message import Message
from pathlib import Path

import pytest

from mailflow.inbound.analysis import analyze
from tests.inbound.lab.cells import Cell
from tests.inbound.lab.world import Produced

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Expect:
    status: str  # the Status: field the MTA writes for this failure
    action: str = "failed"
    # The reading when the DSN's words say something other than the failure we caused (OpenSMTPD refuses
    # to relay with the words it uses for an unknown user): (reason, hard).
    reading: tuple[str, bool] | None = None
    # A plain-text report (no delivery-status part, Status ""): lines its text holds ({recipient} is the
    # cell's), and the enhanced code of the reply it quotes ("" when none), the status the parser gives.
    says: tuple[str, ...] = ()
    quoted: str = ""


@dataclass(frozen=True)
class Written:
    recipient: str
    action: str
    status: str


def delivery_status(raw: bytes) -> list[Written]:
    """Every per-recipient block of the message/delivery-status parts, by the standard library."""
    mail = email.message_from_bytes(raw, policy=policy.compat32)
    blocks = []
    for part in mail.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in part.get_payload():
            if not isinstance(block, Message):
                continue
            final = str(block.get("Final-Recipient", ""))
            if final:
                address = final.split(";", 1)[-1].strip().strip("<>").lower()
                blocks.append(Written(address, str(block.get("Action", "")).strip().lower(),
                                      str(block.get("Status", "")).strip()))
    return blocks


def _dsn(produced: Produced, cell: Cell) -> bytes:
    dsn = produced.dsns.get(cell.name)
    assert dsn is not None, (f"no DSN came back for {cell.name} ({produced.recipients.get(cell.name)}) "
                             f"within {produced.seconds:.0f} s; the MTA's log ends:\n{produced.log[-4000:]}")
    return dsn.raw


def wrote(produced: Produced, cell: Cell, expect: Expect) -> None:
    raw = _dsn(produced, cell)
    recipient = produced.recipients[cell.name]
    assert produced.counts[cell.name] == 1, f"{produced.counts[cell.name]} DSNs for one failed mail"
    if not expect.says:
        assert delivery_status(raw) == [Written(recipient, expect.action, expect.status)], raw[:3000]
        return
    assert delivery_status(raw) == [], raw[:3000]
    text = email.message_from_bytes(raw, policy=policy.compat32).get_payload(decode=True)
    assert isinstance(text, bytes), raw[:3000]
    said = text.decode(errors="replace").replace("\r\n", "\n")
    for line in expect.says:
        assert line.format(recipient=recipient) in said, said[:3000]


def parsed(produced: Produced, cell: Cell, expect: Expect) -> None:
    raw = _dsn(produced, cell)
    recipient = produced.recipients[cell.name]
    reason, hard = expect.reading or (cell.reason, cell.hard)
    analysis = analyze(raw)
    assert analysis.kind == "bounce", analysis
    assert [r.address for r in analysis.recipients] == [recipient], analysis.recipients
    [found] = analysis.recipients
    assert (found.action, found.reason, found.hard) == (expect.action, reason, hard), found
    if expect.says:
        assert found.status == expect.quoted, found
    elif expect.status.endswith(".0.0"):
        assert found.status in ("", expect.status) or found.status[0] == expect.status[0], found
    else:
        assert found.status == expect.status, found


def parser_cases(expected: dict[str, Expect], misread: dict[str, str]) -> list[object]:
    """The cells as pytest params; a cell the parser misreads today is a strict xfail naming what it
    gets wrong (the bounce parser's work removes the mark when it reads the cell right)."""
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=misread[name]))
            if name in misread else name for name in expected]


def command_agrees(produced: dict[str, Produced], folder: Path) -> None:
    """``mailflow bounce parse`` on every DSN, as a real process: one line per file, and each line says
    what ``analyze`` says."""
    files = []
    for mta, result in sorted(produced.items()):
        for name, dsn in sorted(result.dsns.items()):
            if dsn is not None:
                path = folder / f"{mta}-{name}.eml"
                path.write_bytes(dsn.raw)
                files.append(path)
    assert files, "no DSN to parse"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAILFLOW_")}
    done = subprocess.run([sys.executable, "-m", "mailflow", "bounce", "parse", *map(str, files)],
                          capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(path) for path in files]
    for line, path in zip(lines, files, strict=True):
        analysis = analyze(path.read_bytes())
        assert line["kind"] == analysis.kind, path.name
        assert line["recipients"] == [
            {"address": r.address, "action": r.action, "hard": r.hard, "reason": r.reason, "status": r.status,
             "diagnostic": r.diagnostic} for r in analysis.recipients], path.name
