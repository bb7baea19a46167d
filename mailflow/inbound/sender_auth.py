"""Whether a received mail really comes from the address in its From header.

Anyone can write `From: <an applicant's address>`; only two things prove it:

1. **Our own receiving server said so.** `Authentication-Results` (RFC 8601) and
   `ARC-Authentication-Results` (RFC 8617) headers whose authserv-id is one of `inbound.authserv_id`
   (comma-separated) — but anyone can write such a header into the mail they send, with our id in it.
   What tells ours apart is the position: our servers add their headers on top of the ones the mail
   brought along, and each of our hops adds one `Received` header. So a result header counts only while
   fewer than `inbound.authserv_hops` Received headers stand above it (default 1: the MX's own Received
   is the line between what it wrote and what the sender wrote). A filter that writes its result *below*
   the MX's Received header (Gmail's MX does) needs one hop more, and then relies on that server
   removing forged copies of its own id, as RFC 8601 section 5 requires it to.
2. **A DKIM signature we verify ourselves** (dkimpy), looking the key up in DNS (`inbound.dns_resolver`,
   empty = the system's), when our server left no verdict. Only mail whose From header carries a
   DKIM-Signature costs a lookup.

Either counts only when aligned with the From domain (DMARC's relaxed alignment without the public
suffix list: the signing or envelope domain equals the From domain or one is a subdomain of the other —
a signature for a parent domain needs that domain's DNS, which an attacker does not hold). A DMARC result
from our server is taken as it is: it already judged alignment.

What this cannot do: SPF needs the address of the server that connected to ours and live DNS at that
moment; a mail read from a mailbox long after carries neither, so SPF only counts when our receiving
server wrote it down (`spf=pass` with an aligned `smtp.mailfrom`). An `arc=pass` from our server only
says the forwarding chain is intact, not who wrote the mail: results written by other ARC sealers are
not trusted (anyone can seal), so they never authenticate a sender here.

`judge(raw, settings) -> SenderAuth` never raises and never touches the database.
"""

from __future__ import annotations

import email
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import policy
from email.message import Message

from mailflow.config import Settings
from mailflow.inbound.analysis import from_header_address

log = logging.getLogger(__name__)

PASS, FAIL, NONE = "pass", "fail", "none"
VERDICTS = (PASS, FAIL, NONE)
DNS_TIMEOUT_SECONDS = 3.0
MAX_SIGNATURES = 5  # a mail with more is not made cheaper to forge by more tries
_KEY_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class SenderAuth:
    """The verdict (pass / fail / none) and, in English, what it rests on (shown to staff beside the
    zh-TW label, and kept on the stored mail)."""

    verdict: str
    detail: str

    @property
    def authenticated(self) -> bool:
        return self.verdict == PASS


# --- RFC 8601 ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One resinfo of an Authentication-Results header: ``dkim=pass header.d=example.com``."""

    method: str
    result: str
    props: dict[str, str]

    def text(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.props.items() if k != "reason")
        return f"{self.method}={self.result}" + (f" {shown}" if shown else "")


# A token starts only where none could continue (the look-behind) and its runs are never given back
# (possessive): a header of 100 KB of letters or digits cost 250 s of backtracking (quadratic) before.
_TOKEN_RE = re.compile(
    r'(?<![\w.-])([A-Za-z0-9][\w.-]*+)\s*+(?:/\s*+\d++\s*+)?=\s*+("(?:[^"\\]|\\.)*+"|[^\s;"]++)'
)
_ARC_INSTANCE_RE = re.compile(r"^\s*i\s*=\s*\d+\s*;", re.I)


def strip_comments(value: str) -> str:
    """``value`` without RFC 5322 comments (nested parentheses), leaving quoted strings alone."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for ch in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if quoted:
            quoted = ch != '"'
            out.append(ch)
        elif ch == '"' and depth == 0:
            quoted = True
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            out.append(" ")
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _split(value: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_results(value: str) -> tuple[str, list[Result]]:
    """(authserv-id, results) of one Authentication-Results value; ('', []) when it is not one."""
    value = _ARC_INSTANCE_RE.sub("", " ".join(value.split()), count=1)
    parts = _split(strip_comments(value))
    head = parts[0].split()
    if not head:
        return "", []
    authserv_id = head[0].strip('"').lower()
    results = []
    for part in parts[1:]:
        pairs = _TOKEN_RE.findall(part)
        if not pairs:
            continue  # "none": no method was run
        method, result = pairs[0][0].lower(), pairs[0][1].strip('"').lower()
        props = {k.lower(): v.strip('"') for k, v in pairs[1:]}
        results.append(Result(method, result, props))
    return authserv_id, results


def trusted_ids(settings: Settings) -> frozenset[str]:
    return frozenset(p.strip().lower() for p in settings.inbound.authserv_id.split(",") if p.strip())


def our_results(msg: Message, ids: frozenset[str], hops: int) -> tuple[list[Result], str]:
    """The results our own servers wrote (see the module docstring) and the authserv-id they carry."""
    found: list[Result] = []
    writer = ""
    received = 0
    for name, value in msg.items():
        lname = name.lower()
        if lname == "received":
            received += 1
            if received >= hops:
                break
            continue
        if lname not in ("authentication-results", "arc-authentication-results"):
            continue
        authserv_id, results = parse_results(str(value))
        if authserv_id in ids:
            found.extend(results)
            writer = writer or authserv_id
    return found, writer


# --- alignment -----------------------------------------------------------------------------


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(".").lower()


def aligned(domain: str, from_domain: str) -> bool:
    domain, from_domain = domain.strip().strip(".").lower(), from_domain.strip().strip(".").lower()
    if not domain or not from_domain:
        return False
    return (domain == from_domain or from_domain.endswith("." + domain)
            or domain.endswith("." + from_domain))


def _judge_results(results: list[Result], from_domain: str, writer: str) -> SenderAuth | None:
    """A verdict from our server's results, or None when they decide nothing."""
    by = f" (by {writer})"
    for r in results:
        if r.method == "dmarc" and domain_of(r.props.get("header.from", from_domain)) == from_domain:
            if r.result == "pass":
                return SenderAuth(PASS, r.text() + by)
            if r.result in ("fail", "reject", "quarantine"):
                return SenderAuth(FAIL, r.text() + by)
    signed = [r for r in results if r.method == "dkim"
              and aligned(r.props.get("header.d") or domain_of(r.props.get("header.i", "")), from_domain)]
    for r in signed:
        if r.result == "pass":
            return SenderAuth(PASS, r.text() + by)
    for r in results:
        if r.method == "spf" and r.result == "pass" and aligned(
                domain_of(r.props.get("smtp.mailfrom", "")), from_domain):
            return SenderAuth(PASS, r.text() + by)
    failed = [r for r in signed if r.result in ("fail", "permerror")]
    if failed:
        return SenderAuth(FAIL, failed[0].text() + by)
    return None


# --- DKIM, verified here -------------------------------------------------------------------

TxtLookup = Callable[..., bytes | None]


class KeyLookup:
    """TXT lookups for DKIM keys through ``server`` ('host' or 'host:port'; '' = the system resolver),
    remembered for a few minutes (one applicant's replies share a key). ``failed`` tells a DNS error
    from a missing key, since dkimpy answers both with a failed verification."""

    def __init__(self, server: str = "") -> None:
        import dns.resolver

        self._resolver = dns.resolver.Resolver(configure=not server)
        if server:
            host, _, port = server.partition(":") if server.count(":") == 1 else (server, "", "")
            self._resolver.nameservers = [host]
            if port:
                self._resolver.port = int(port)
        self._cache: dict[bytes, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()
        self.failed = threading.local()

    def __call__(self, name: bytes, timeout: float = DNS_TIMEOUT_SECONDS) -> bytes | None:
        moment = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and moment - hit[0] < _KEY_CACHE_SECONDS:
            return hit[1]
        value = self._ask(name, min(timeout, DNS_TIMEOUT_SECONDS))
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[name] = (moment, value)
        return value

    def _ask(self, name: bytes, timeout: float) -> bytes | None:
        import dns.exception
        import dns.name
        import dns.rdatatype
        import dns.resolver

        try:
            answer = self._resolver.resolve(name.decode("ascii"), dns.rdatatype.TXT, lifetime=timeout,
                                            raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, UnicodeDecodeError, dns.name.EmptyLabel, dns.name.LabelTooLong):
            return None
        except (dns.exception.DNSException, OSError) as exc:
            self.failed.value = f"{type(exc).__name__}"
            raise _DnsError(str(exc)) from None
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(next(iter(rrset)).strings)
        return None


class _DnsError(Exception):
    pass


_lookups: dict[str, KeyLookup] = {}
_lookups_lock = threading.Lock()


def key_lookup(settings: Settings) -> KeyLookup:
    """One KeyLookup (and its cache) per resolver setting, shared by the threads of a process."""
    server = settings.inbound.dns_resolver.strip()
    with _lookups_lock:
        if server not in _lookups:
            _lookups[server] = KeyLookup(server)
        return _lookups[server]


_D_TAG_RE = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.I)


def _signing_domains(msg: Message) -> list[str]:
    values = msg.get_all("DKIM-Signature") or []
    return [m.group(1).lower() if (m := _D_TAG_RE.search(" ".join(str(v).split()))) else ""
            for v in values]


def verify_dkim(raw: bytes, msg: Message, from_domain: str, lookup: KeyLookup) -> SenderAuth | None:
    """Verify the DKIM signatures made for the From domain; None when there is none to verify."""
    import dkim

    domains = _signing_domains(msg)[:MAX_SIGNATURES]
    wanted = [i for i, d in enumerate(domains) if aligned(d, from_domain)]
    if not wanted:
        if domains:
            return SenderAuth(NONE, f"dkim signed by {', '.join(sorted(set(domains)))}, not the From domain")
        return None
    checker = dkim.DKIM(raw, logger=_quiet, timeout=int(DNS_TIMEOUT_SECONDS), minkey=1024)
    dns_trouble = ""

    def get_txt(name: bytes, timeout: float = DNS_TIMEOUT_SECONDS) -> bytes | None:
        nonlocal dns_trouble
        try:
            return lookup(name, timeout)
        except _DnsError as exc:
            dns_trouble = str(exc) or "DNS error"
            raise dkim.DnsTimeoutError(dns_trouble) from None

    for index in wanted:
        try:
            if checker.verify(idx=index, dnsfunc=get_txt):
                return SenderAuth(PASS, f"dkim=pass header.d={domains[index]} (verified by mailflow)")
        except dkim.DKIMException as exc:
            log.debug("DKIM signature %d does not verify: %s", index, exc)
        except Exception as exc:  # dkimpy on hostile bytes: any failure is a failed signature
            log.debug("DKIM signature %d unreadable: %s", index, type(exc).__name__)
    if dns_trouble:
        return SenderAuth(NONE, f"dkim key lookup failed for {domains[wanted[0]]} ({dns_trouble[:100]})")
    return SenderAuth(FAIL, f"dkim=fail header.d={domains[wanted[0]]} (verified by mailflow)")


class _QuietLog(logging.LoggerAdapter):
    """dkimpy logs every failed signature at ERROR; a forged reply is ordinary input, not an error."""

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:
        self.logger.debug(msg, *args)


_quiet = _QuietLog(logging.getLogger("mailflow.inbound.dkim"), {})


# --- the verdict ---------------------------------------------------------------------------


def judge(raw: bytes, settings: Settings, *, from_address: str | None = None,
          lookup: KeyLookup | None = None) -> SenderAuth:
    """Whether ``raw`` comes from its From address. Never raises."""
    try:
        return _judge(raw, settings, from_address, lookup)
    except Exception as exc:
        log.warning("sender authentication failed on a mail (%s); treating it as unauthenticated",
                    type(exc).__name__)
        return SenderAuth(NONE, f"could not be checked ({type(exc).__name__})")


def _judge(raw: bytes, settings: Settings, from_address: str | None, lookup: KeyLookup | None) -> SenderAuth:
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    froms = msg.get_all("From") or []
    if len(froms) != 1:
        # Two From headers is the classic way to show one address and sign another.
        return SenderAuth(NONE, f"{len(froms)} From headers")
    sender = from_address if from_address is not None else from_header_address(str(froms[0]))
    from_domain = domain_of(sender)
    if not from_domain:
        return SenderAuth(NONE, "no From address")
    ids = trusted_ids(settings)
    if ids:
        results, writer = our_results(msg, ids, settings.inbound.authserv_hops)
        verdict = _judge_results(results, from_domain, writer)
        if verdict is not None:
            return verdict
    if settings.inbound.dkim_verify:
        verdict = verify_dkim(raw, msg, from_domain, lookup or key_lookup(settings))
        if verdict is not None:
            return verdict
    return SenderAuth(NONE, "no authentication result from our server and no DKIM signature of "
                            f"{from_domain}")


def weakest(verdicts: Iterable[str | None]) -> str | None:
    """The verdict a support item shows for several mails: one forged or unproven mail on it is enough
    to make every request on it suspect."""
    order = {FAIL: 0, NONE: 1, PASS: 2}
    known = [v for v in verdicts if v in order]
    return min(known, key=order.__getitem__) if known else None
