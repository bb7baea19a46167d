"""The bounce lab: for every MTA and every failure it can produce (cells.py), that the MTA really wrote
that failure — its DSN, with the Action and Status pinned in the MTA's module — and that mailflow's
parser reads the DSN as that failure; ``mailflow bounce parse`` on all the DSNs; and why OpenSMTPD's
relay refusal reads as an unknown user.

Select one MTA with its marker (``-m exim``). A cell the parser misreads today is a strict xfail whose
reason starts with "parser:", listed in the MTA's MISREAD.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from tests.inbound.lab import opensmtpd
from tests.inbound.lab.cells import CELLS
from tests.inbound.lab.conftest import MTAS, produced_by
from tests.inbound.lab.expect import command_agrees, parsed, wrote
from tests.inbound.lab.world import DENY_HOST, Lab, Produced

pytestmark = pytest.mark.once


def cases(with_misread: bool) -> list[object]:
    """(MTA, cell) for every cell each MTA produces, marked with the MTA's marker, and — for the
    parser's tests — a strict xfail where the MTA's MISREAD names what the parser gets wrong."""
    params: list[object] = []
    for mta, module in MTAS.items():
        for cell in module.EXPECTED:
            marks = [getattr(pytest.mark, mta)]
            if with_misread and cell in module.MISREAD:
                marks.append(pytest.mark.xfail(strict=True, reason=module.MISREAD[cell]))
            params.append(pytest.param(mta, cell, marks=marks, id=f"{mta}-{cell}"))
    return params


@pytest.mark.parametrize("mta", [pytest.param(mta, marks=getattr(pytest.mark, mta)) for mta in MTAS])
def test_each_cell_is_pinned_or_explained(mta: str) -> None:
    module = MTAS[mta]
    cannot: frozenset[str] = getattr(module, "NOT_PRODUCED", frozenset())
    assert set(module.EXPECTED) | cannot == set(CELLS) and not set(module.EXPECTED) & cannot
    assert set(module.MISREAD) <= set(module.EXPECTED)


@pytest.mark.parametrize(("mta", "cell"), cases(with_misread=False))
def test_mta_wrote_the_failure(lab_dsns: dict[str, Produced | str], mta: str, cell: str) -> None:
    wrote(produced_by(mta, lab_dsns), CELLS[cell], MTAS[mta].EXPECTED[cell])


@pytest.mark.parametrize(("mta", "cell"), cases(with_misread=True))
def test_parser_reads_the_dsn(lab_dsns: dict[str, Produced | str], mta: str, cell: str) -> None:
    parsed(produced_by(mta, lab_dsns), CELLS[cell], MTAS[mta].EXPECTED[cell])


@pytest.mark.postfix
@pytest.mark.exim
@pytest.mark.opensmtpd
@pytest.mark.sendmail
@pytest.mark.dma
@pytest.mark.courier
def test_bounce_parse_reads_every_dsn_as_analyze_does(lab_dsns: dict[str, Produced | str],
                                                      tmp_path: Path) -> None:
    """One real process for the DSNs of every MTA that ran (one that did not fails its own tests), since
    its start-up is most of its time."""
    produced = {mta: result for mta, result in lab_dsns.items() if isinstance(result, Produced)}
    if not produced:
        pytest.skip("no MTA of the lab ran")
    command_agrees(produced, tmp_path)


@pytest.mark.opensmtpd
def test_opensmtpd_refuses_relaying_and_unknown_users_in_the_same_words(lab: Lab) -> None:
    opensmtpd.require()
    instance = opensmtpd.start(lab)
    try:
        replies = []
        for host, port, rcpt in ((instance.host, instance.port, f"nosuchuser@{instance.hostname}"),
                                 (DENY_HOST, instance.deny_port, "someone@deny.lab.test")):
            with smtplib.SMTP(host, port, local_hostname="client.lab.test", timeout=30) as smtp:
                smtp.ehlo()
                smtp.mail("someone@catcher.lab.test")
                code, text = smtp.rcpt(rcpt)
                replies.append((code, text.decode().replace(rcpt, "RCPT")))
        assert replies[0] == replies[1] == (550, "Invalid recipient: <RCPT>")
    finally:
        instance.stop()
