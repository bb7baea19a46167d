"""Signed return paths: a bounce address names its mail, survives case folding, and forgeries show."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailflow.config import load_settings
from mailflow.mail.returnpath import make_return_path, make_tag, parse_tag

SETTINGS = load_settings(None, {"MAILFLOW_SECURITY__SECRET_KEY": "a-test-secret-key-0123456789"})
OTHER = load_settings(None, {"MAILFLOW_SECURITY__SECRET_KEY": "another-secret-key-9876543210"})


def test_shape_of_the_return_path() -> None:
    address = make_return_path(SETTINGS, 42)
    local, domain = address.split("@")
    assert domain == "bounces.twport.com.tw"
    assert local.startswith("bounce+42-") and local == local.lower()
    assert parse_tag(SETTINGS, address) == (42, True)


@given(st.integers(min_value=1, max_value=10**15))
def test_every_id_round_trips_even_upper_cased(outbox_id: int) -> None:
    address = make_return_path(SETTINGS, outbox_id)
    assert parse_tag(SETTINGS, address) == (outbox_id, True)
    assert parse_tag(SETTINGS, f"<{address.upper()}>") == (outbox_id, True)
    assert parse_tag(SETTINGS, make_tag(SETTINGS, outbox_id)) == (outbox_id, True)


def test_forged_or_foreign_tags_are_recognised() -> None:
    good = make_tag(SETTINGS, 7)
    other_id = good.replace("7-", "8-", 1)
    assert parse_tag(SETTINGS, f"bounce+{other_id}@bounces.twport.com.tw") == (8, False)
    assert parse_tag(OTHER, make_return_path(SETTINGS, 7)) == (7, False)
    flipped = good[:-1] + ("a" if good[-1] != "a" else "b")
    assert parse_tag(SETTINGS, flipped) == (7, False)


def test_things_that_are_not_tags() -> None:
    for value in ["", "postmaster@example.com", "bounce+@x", "bounce+abc-def@x", "bounce+12@x",
                  "bounce+12-!!!!!!!!!!!!!!!!@x", "<>", "bounce+1-" + "a" * 40 + "@x"]:
        assert parse_tag(SETTINGS, value) == (None, False)
