"""Every catalogued mail has a context type (mailflow.mail.contexts), and `mailflow preview`'s sample of it
(mailflow.mail.render.sample_context) has exactly that type's keys: a key the queue_ function adds and the
sample lacks (or the other way) fails here, not in a preview that silently renders an empty field."""

from __future__ import annotations

import pytest

from mailflow.config import Settings
from mailflow.mail import catalog, contexts
from mailflow.mail.render import sample_context


def test_every_catalogued_mail_but_the_api_ones_has_a_context_type() -> None:
    assert set(contexts.CONTEXTS) == {spec.name for spec in catalog.MAILS if not spec.api}


@pytest.mark.parametrize("name", sorted(contexts.CONTEXTS))
def test_the_preview_sample_has_exactly_the_mails_context_keys(settings: Settings, name: str) -> None:
    kind = contexts.CONTEXTS[name]
    keys = set(kind.__required_keys__) | set(kind.__optional_keys__)  # type: ignore[attr-defined]
    assert keys and set(sample_context(name, settings)) == keys


@pytest.mark.parametrize("spec", [s for s in catalog.MAILS if s.link_key], ids=lambda s: s.name)
def test_a_mails_link_key_is_in_its_context_type(spec: catalog.MailSpec) -> None:
    assert spec.link_key in contexts.CONTEXTS[spec.name].__required_keys__  # type: ignore[attr-defined]
