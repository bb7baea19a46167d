"""The reference-paths switch (issue 16 item 10). Three hot paths have a faster form beside the plain one
they must agree with: mail bytes written directly instead of by the stdlib's ``build_message``
(mailflow.mail.render), the /verify page's token read as one Core query instead of through the ORM
session (mailflow.accounts.tokens), and an inbound mail's MIME tree cut at its boundaries instead of read
line by line by the stdlib's parser (mailflow.inbound.mime). With ``MAILFLOW_REFERENCE_PATHS=1`` in the
environment (read at import; the tests' option ``--reference-paths`` sets it) all take the plain form. CI
runs the mail, /verify and bounce-corpus tests once that way (scripts/test.sh), so the plain forms stay
working ways to run, not only the yardsticks of tests/mail/test_wire.py, tests/web/test_token_reads.py
and tests/inbound/test_mime.py."""

from __future__ import annotations

import os

ON = os.environ.get("MAILFLOW_REFERENCE_PATHS", "") == "1"
