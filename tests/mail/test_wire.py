"""The direct writer (render.render_bytes) against the stdlib reference (render.build_message): the same
bytes for every template and for awkward names, addresses and Message-IDs, so the fast path can never
change a header."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mailflow import reference
from mailflow.config import Settings
from mailflow.mail import TEMPLATE_NAMES, render
from mailflow.mail.render import WIRE_POLICY, Envelope, RenderError, build_message, sample_context, wire_bytes

MOMENT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BOUNDARY = "=_mf_" + "0123456789abcdef" * 2

NAMES = ["王小明", "王小明1", "José", "Zoë", "1王", "王 小明", "Wang Xiao", "A.B", '"quoted"', "王，明",
         "王-明", "王小明" * 6, "a" * 70, "é" * 30, "", "x\r\nBcc: evil@example.net", "Ünïcode-ß"]
ADDRESSES = ["wang@example.com", "a.b+c@sub.example.com", " padded@example.com ", "王@example.com",
             '"a b"@example.com', "x@[1.2.3.4]", "not an address", "a" * 64 + "@" + "b" * 60 + ".example.com"]
MESSAGE_IDS = ["<m1@twport.com.tw>", "<" + "a" * 80 + "@twport.com.tw>", "no-brackets", "<a b@c>"]


def both(settings: Settings, envelope: Envelope) -> tuple[bytes | str, bytes | str]:
    """(reference, direct), each the bytes or "RenderError"."""
    try:
        message = build_message(settings, envelope, MOMENT, BOUNDARY)
        reference: bytes | str = message.as_bytes(policy=WIRE_POLICY)
    except RenderError:
        reference = "RenderError"
    try:
        direct: bytes | str = wire_bytes(settings, envelope, MOMENT, BOUNDARY)
    except RenderError:
        direct = "RenderError"
    return reference, direct


@pytest.mark.parametrize("template", sorted(TEMPLATE_NAMES))
def test_every_template_is_written_byte_for_byte_like_the_stdlib(settings: Settings, template: str) -> None:
    context = sample_context(template, settings)
    for name in NAMES:
        for address in ADDRESSES:
            envelope = Envelope(template, address, name, MESSAGE_IDS[0], context)
            reference, direct = both(settings, envelope)
            assert direct == reference, (name, address)
    for message_id in MESSAGE_IDS:
        reference, direct = both(settings, Envelope(template, ADDRESSES[0], NAMES[0], message_id, context))
        assert direct == reference, message_id


def test_reply_to_and_odd_sender_names_too(settings: Settings) -> None:
    settings = settings.updated(mail={
        "reply_address": "hep-support@twport.com.tw", "from_": '"Port, Pass" <hep@twport.com.tw>'})
    envelope = Envelope("account-approved", "wang@example.com", "王小明", "<m@x.tw>",
                        sample_context("account-approved", settings))
    reference, direct = both(settings, envelope)
    assert isinstance(direct, bytes) and b"Reply-To: hep-support@twport.com.tw\r\n" in direct
    assert direct == reference


@hypothesis_settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=40), local=st.from_regex(r"[A-Za-z0-9._+-]{1,20}", fullmatch=True),
       body=st.text(max_size=200))
@example(name="王\u3000明", local="a", body="line\rline\nline\r\nend")
@example(name="\u2028", local="a..b", body="")
def test_any_name_address_and_text_match_the_stdlib(settings: Settings, name: str, local: str,
                                                     body: str) -> None:
    envelope = Envelope("account-rejected", f"{local}@example.com", name, "<m1@twport.com.tw>",
                        {**sample_context("account-rejected", settings), "company_name": body, "name": name})
    reference, direct = both(settings, envelope)
    assert direct == reference


def _refuse(*args: object, **kwargs: object) -> bytes:
    raise AssertionError("the other path was taken")


def test_the_reference_switch_sends_what_build_message_writes(settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """MAILFLOW_REFERENCE_PATHS=1 (mailflow.reference.ON) routes render_bytes through build_message and
    never through the writer; off, the writer alone. Same bytes either way."""
    envelope = Envelope("account-approved", "wang@example.com", "王小明", "<m1@twport.com.tw>",
                        sample_context("account-approved", settings))
    monkeypatch.setattr(render, "new_boundary", lambda: BOUNDARY)
    expected = build_message(settings, envelope, MOMENT, BOUNDARY).as_bytes()
    with monkeypatch.context() as switched:
        switched.setattr(reference, "ON", True)
        switched.setattr(render, "assemble", _refuse)
        assert render.render_bytes(settings, envelope, MOMENT) == expected
    monkeypatch.setattr(reference, "ON", False)
    monkeypatch.setattr(render, "message_of", _refuse)
    assert render.render_bytes(settings, envelope, MOMENT) == expected
