"""The bounce lab's fixtures: the lab around the MTAs (once per session) and the DSNs of every MTA the
session's tests ask for, produced concurrently — the lab's time is its slowest MTA's, not their sum.

Only root can run the lab (namespaces, port 53); CI runs as root, so there it never skips. The lab
tests touch no database: they are marked ``once`` and run in the SQLite pass only.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import pytest

from tests.inbound.lab import courier, dma, exim, opensmtpd, postfix, sendmail
from tests.inbound.lab.dns import NxDomainServer
from tests.inbound.lab.lmtp import lmtp_or_skip, start_lmtp
from tests.inbound.lab.namespace import require_root
from tests.inbound.lab.peers import Peers
from tests.inbound.lab.world import Lab, Produced, produce

MTAS: dict[str, ModuleType] = {"postfix": postfix, "exim": exim, "opensmtpd": opensmtpd, "sendmail": sendmail,
                               "dma": dma, "courier": courier}


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    require_root()
    lmtp_or_skip()
    dns = NxDomainServer()
    peers = Peers()
    the_lab = Lab(dns, peers, start_lmtp())
    yield the_lab
    the_lab.stop()


def _run(module: ModuleType, lab: Lab) -> Produced | str:
    try:
        mta = module.start(lab)
    except Exception:
        return traceback.format_exc()
    try:
        return produce(mta, lab)
    except Exception:
        return traceback.format_exc() + mta.log()[-4000:]
    finally:
        mta.stop()


@pytest.fixture(scope="session")
def lab_dsns(request: pytest.FixtureRequest, lab: Lab) -> dict[str, Produced | str]:
    """MTA name -> what it produced (or why it could not), for the MTAs whose marker a selected test
    carries and that are present (a missing one is skipped or failed by its own tests)."""
    wanted = [name for name, module in MTAS.items()
              if module.available() and any(item.get_closest_marker(name) for item in request.session.items)]
    with ThreadPoolExecutor(max_workers=max(len(wanted), 1), thread_name_prefix="lab") as pool:
        futures = {name: pool.submit(_run, MTAS[name], lab) for name in wanted}
        return {name: future.result() for name, future in futures.items()}


def produced_by(name: str, lab_dsns: dict[str, Produced | str]) -> Produced:
    MTAS[name].require()
    result = lab_dsns.get(name)
    if isinstance(result, Produced):
        return result
    raise AssertionError(f"{name} did not run: {result}")
