"""`expired`: delivery was given up after the queue lifetime ran out (RFC 3463 x.4.7).

Also a delay report: a message still being retried is on its way to expiring.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="expired",
    codes=("4.4.1", "4.4.7"),
    phrases=(
        "did not accept our requests to connect",
        "could not deliver for the last",
        "envelope expired",
        "message expired",
        "connection timed out",
        "could not find a gateway for",
        "delivery attempts will continue to be",
        "delivery time expired",
        "failed to deliver to domain ",
        "has been delayed",
        "it has not been collected after",
        "message could not be delivered for more than",
        "message expired, ",
        "message has been in the queue too long",
        "message timed out",
        "retry time not reached",
        "server did not respond",
        "this message has been in the queue too long",
        "unable to deliver message after multiple retries",
        "was not reachable within the allowed queue period",
        "your message could not be delivered for more than",
        "could not be delivered for",
        "delivery expired",
        "retry timeout exceeded",
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
