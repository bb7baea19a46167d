"""flufl.bounce's own sample bounces and its answers (Apache-2.0, tests/inbound/flufl/README.md).

Mails the parser was not written from: the recipients flufl expects, no extra addresses, delay
warnings reported as delayed, and its two non-bounces left alone.
"""

from __future__ import annotations

from tests.inbound.corpus import score_flufl


def test_flufl_set() -> None:
    sc = score_flufl()
    fig = sc.figures()
    print("\n" + "\n".join(sc.mismatches))
    assert sc.wrong_kind == []
    assert fig["recipients"] >= 0.945 and fig["extra"] <= 0.035
    assert fig["delayed"] >= 0.99
