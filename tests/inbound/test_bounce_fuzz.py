"""analyze() never raises and always answers a valid kind, even on mutated bounces."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.inbound.analysis import KINDS, analyze
from tests.inbound.corpus import corpus_dir

_CORPUS = corpus_dir()
_SAMPLES = sorted(_CORPUS.glob("*.eml"))[::4] if _CORPUS.exists() else []
_SEEDS = [p.read_bytes() for p in _SAMPLES] or [b"From: a@b\nSubject: x\n\nbody\n"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == 0 and raw:
            raw[pos] = draw(st.integers(0, 255))
        elif op == 1:
            raw[pos:pos] = draw(st.binary(max_size=64))
        elif op == 2:
            del raw[pos : pos + draw(st.integers(0, 200))]
        else:
            raw = raw[:pos]
    return bytes(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_corpus_never_raises(raw: bytes) -> None:
    result = analyze(raw)
    assert result.kind in KINDS
    for r in result.recipients:
        assert r.action in ("failed", "delayed")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert analyze(raw).kind in KINDS
