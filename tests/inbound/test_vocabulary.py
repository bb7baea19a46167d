"""One vocabulary of bounce reasons (mailflow.inbound.bounce.vocabulary.BounceReason): the classifier's
catalogue answers only members, and every member has the zh-TW sentence customer service reads."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons import known_reasons
from mailflow.inbound.bounce.reasons.catalogue import ALL
from mailflow.inbound.bounce.vocabulary import BounceReason
from mailflow.support.reasons_zh import REASON_SENTENCES


def test_every_reason_module_is_a_member() -> None:
    assert {reason.name for reason in ALL} - set(BounceReason) == set()
    assert known_reasons() <= set(BounceReason)


def test_every_member_has_a_zh_tw_sentence_and_no_sentence_is_for_a_stranger() -> None:
    assert set(BounceReason) - set(REASON_SENTENCES) == set()
    assert set(REASON_SENTENCES) - set(BounceReason) == set()


def test_members_are_the_contract_strings() -> None:
    assert all(member == member.value == member.value.lower() for member in BounceReason)
    assert f"{BounceReason.USERUNKNOWN}" == "userunknown"  # as stored and as `bounce parse` prints it
