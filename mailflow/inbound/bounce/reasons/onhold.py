"""`onhold`: a failure with a diagnostic nobody could read a reason from.

Customer service looks at these.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="onhold",
)
