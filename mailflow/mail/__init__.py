"""Outgoing mail: templates, rendering, the outbox, dispatch, return paths, the capture mailbox."""

from mailflow.mail.catalog import TEMPLATE_NAMES

__all__ = ["TEMPLATE_NAMES"]
