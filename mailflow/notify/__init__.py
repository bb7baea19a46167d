"""The notification service the rest of the pass system calls (CONTRACT.md, "Notifications API"):

- ``apikeys``: keys (issue, hash, revoke), the per-key rate and the audit of every use;
- ``templates``: which mail templates the API may use and the personalisation each one needs;
- ``notifications``: sending one (idempotent, to a 帳號's verified address or an address), its status;
- ``events``: the event outbox (``emit_event``), its sequencer and the pull feed;
- ``webhooks``: subscribers, Standard Webhooks signatures and the delivery job.
"""
