"""Accuracy against Sisimai's answers on the development half of its corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.inbound.analysis import analyze
from tests.inbound.corpus import corpus_dir, load_expected, score

CORPUS = corpus_dir()
pytestmark = pytest.mark.skipif(
    not (CORPUS / "expected.json").exists(), reason=f"no bounce corpus at {CORPUS}"
)


def test_accuracy_targets() -> None:
    sc = score(CORPUS)
    fig = sc.figures()
    print("\n" + "\n".join(sc.mismatches))
    print(
        f"\nrecipients {sc.matched}/{sc.expected} = {fig['recipients']:.3f}  "
        f"extra {sc.extra} = {fig['extra']:.3f}  "
        f"hard {fig['hard']:.3f}  reason {fig['reason']:.3f}  wrong kind {sc.wrong_kind}"
    )
    assert fig["recipients"] >= 0.97
    assert fig["extra"] <= 0.02
    assert fig["hard"] >= 0.95
    assert fig["reason"] >= 0.85
    assert sc.wrong_kind == []


def _files() -> list[Path]:
    if not (CORPUS / "expected.json").exists():
        return []
    return [CORPUS / name for name in sorted(load_expected(CORPUS))]


def _key(raw: bytes) -> object:
    a = analyze(raw)
    return (a.kind, a.recipients, a.message_id, a.subject, a.returned_message_id, a.feedback_type)


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_line_endings_do_not_matter(path: Path) -> None:
    raw = path.read_bytes()
    lf = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    expected = _key(lf)
    assert _key(lf.replace(b"\n", b"\r\n")) == expected
    assert _key(lf.replace(b"\n", b"\r")) == expected


def test_cli_prints_one_line_per_file(tmp_path: Path) -> None:
    import io
    import json
    from argparse import Namespace

    from mailflow.cli_bounce import run_parse

    files = _files()[:3] + [tmp_path / "missing.eml"]
    out = io.StringIO()
    assert run_parse(Namespace(files=[str(f) for f in files]), out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    assert lines[-1]["kind"] == "other"
    for line in lines:
        assert set(line) == {"file", "kind", "recipients"}
        for r in line["recipients"]:
            assert set(r) == {"address", "action", "hard", "reason", "status", "diagnostic"}
