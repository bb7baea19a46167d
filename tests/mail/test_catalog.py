"""The mail catalogue (mailflow.mail.catalog) is the one list of mails: every template folder is in it and
nothing else, each mail's one-time link is where its spec says, and the lists other parts read come from
it."""

from __future__ import annotations

import pytest

from mailflow.config import Settings
from mailflow.mail import catalog, states
from mailflow.mail.render import sample_context
from mailflow.notify.templates import is_api_template
from mailflow.paths import templates_dir
from mailflow.support.reasons_zh import mail_title


def test_every_template_folder_is_a_catalogued_mail_and_back() -> None:
    folders = {p.name for p in templates_dir().iterdir() if p.is_dir() and (p / "subject.txt").exists()}
    assert folders == set(catalog.CATALOG)


@pytest.mark.parametrize("spec", catalog.MAILS, ids=lambda s: s.name)
def test_a_mail_with_a_link_renders_from_that_key_and_loses_it_when_final(settings: Settings,
                                                                         spec: catalog.MailSpec) -> None:
    sample = sample_context(spec.name, settings)
    if spec.link_key:
        assert spec.link_key in sample and spec.link_key in states.SECRET_CONTEXT_KEYS
        assert spec.link_key not in states.step("sending", "sent", context=sample).get("context", sample)
    assert is_api_template(spec.name) == spec.api
    assert mail_title(spec.name) == spec.title != spec.name
    assert not (spec.recovery and spec.not_resendable) and not (spec.verification and spec.not_resendable)


def test_verification_mails_are_the_address_checks() -> None:
    assert catalog.VERIFICATION_TEMPLATES == ("account-approved", "verify-reminder")
    assert set(catalog.LINK_KEYS) >= set(catalog.VERIFICATION_TEMPLATES)
