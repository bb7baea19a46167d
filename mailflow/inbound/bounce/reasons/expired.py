"""`expired`: delivery was given up after the queue lifetime ran out (RFC 3463 x.4.7).

Also a delay report: a message still being retried is on its way to expiring.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="expired",
    codes=("4.4.1", "4.4.7"),
    documented=(
        (
            "could not deliver for the last",
            "dma (DragonFly Mail Agent) dma.c: 'Could not deliver for the last %d seconds'",
        ),
        ("envelope expired", "OpenSMTPD queue.c: 'Envelope expired'"),
        (
            "this message has been in the queue too long",
            "qmail 1.03 qmail-send: '... this message has been in the queue too long. (#4.4.7)'",
        ),
        ("retry timeout exceeded", "Exim: 'retry timeout exceeded'"),
        ("cannot send message for", "sendmail queue timeout: 'Cannot send message for %s'"),
        ("delivery time expired", "RFC 3463 X.4.7 'Delivery time expired'"),
    ),
    phrases=(
        "did not accept our requests to connect",
        "message expired",
        "connection timed out",
        "could not find a gateway for",
        "delivery attempts will continue to be",
        "failed to deliver to domain ",
        "has been delayed",
        "it has not been collected after",
        "message could not be delivered for more than",
        "message expired, ",
        "message has been in the queue too long",
        "message timed out",
        "retry time not reached",
        "server did not respond",
        "unable to deliver message after multiple retries",
        "was not reachable within the allowed queue period",
        "your message could not be delivered for more than",
        "could not be delivered for",
        "delivery expired",
        "undeliverable for",
        "too long in the queue",
        "no response",
        "deferred",
        "giving up on",
        "have been failing for a long time",
        "message expired after sitting in queue for",
        "message expired, cannot connect to remote server",
        "message expired, connection refulsed",
        "retry time not reached for any host after a long failure period",
    ),
    words=("delay",),
)
