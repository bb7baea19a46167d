"""Bounce reason classification in Sisimai's vocabulary.

Owns the mapping status code / SMTP reply code / diagnostic text -> reason and
hard/soft.  It follows Sisimai's decision shape (own code, own phrase lists):

1. an explicit reason a detector already knows wins unless it is a "retry" one;
2. a first pass of reason probes where either the enhanced status code names the
   reason or the diagnostic text carries one of its phrases (ordered: the most
   specific reasons first);
3. a second pass over the softer reasons by text, then the status code alone,
   then class-level fallbacks (x.6 content, x.7 security, X-Unix mailer, 50x
   syntax, delayed -> expired, HELO -> blocked);
4. onhold when there is a diagnostic nobody understood, else undefined.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.remote import remote_reason

# Reasons whose guess a later, better look may replace (Sisimai retries these too).
RETRY = frozenset(
    {
        "undefined",
        "onhold",
        "systemerror",
        "securityerror",
        "expired",
        "networkerror",
        "hostunknown",
        "userunknown",
    }
)
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved"})

# Enhanced status code -> reason (RFC 3463 / IANA registry meanings).
STATUS_REASON: dict[str, str] = {
    "4.1.6": "hasmoved",
    "4.1.7": "rejected",
    "4.1.8": "rejected",
    "4.1.9": "systemerror",
    "4.2.1": "blocked",
    "4.2.2": "mailboxfull",
    "4.2.3": "exceedlimit",
    "4.2.4": "filtered",
    "4.3.1": "systemfull",
    "4.3.2": "notaccept",
    "4.3.3": "systemerror",
    "4.3.5": "systemerror",
    "4.4.1": "expired",
    "4.4.2": "networkerror",
    "4.4.3": "systemerror",
    "4.4.4": "networkerror",
    "4.4.5": "systemfull",
    "4.4.6": "networkerror",
    "4.4.7": "expired",
    "4.4.8": "networkerror",
    "4.5.3": "systemerror",
    "4.5.5": "systemerror",
    "4.6.0": "contenterror",
    "4.6.2": "contenterror",
    "4.6.5": "contenterror",
    "4.7.1": "blocked",
    "4.7.2": "blocked",
    "4.7.5": "securityerror",
    "4.7.6": "securityerror",
    "4.7.7": "securityerror",
    "4.7.12": "securityerror",
    "4.7.15": "securityerror",
    "4.7.16": "mesgtoobig",
    "4.7.24": "authfailure",
    "4.7.25": "requireptr",
    "4.7.26": "authfailure",
    "5.1.0": "userunknown",
    "5.1.1": "userunknown",
    "5.1.2": "hostunknown",
    "5.1.3": "userunknown",
    "5.1.4": "filtered",
    "5.1.6": "hasmoved",
    "5.1.7": "rejected",
    "5.1.8": "rejected",
    "5.1.9": "systemerror",
    "5.1.10": "notaccept",
    "5.2.0": "filtered",
    "5.2.1": "filtered",
    "5.2.2": "mailboxfull",
    "5.2.3": "exceedlimit",
    "5.2.4": "filtered",
    "5.3.0": "systemerror",
    "5.3.1": "systemfull",
    "5.3.2": "notaccept",
    "5.3.3": "systemerror",
    "5.3.4": "mesgtoobig",
    "5.3.5": "systemerror",
    "5.4.0": "networkerror",
    "5.4.3": "systemerror",
    "5.4.4": "notaccept",
    "5.5.2": "syntaxerror",
    "5.5.3": "toomanyconn",
    "5.5.4": "systemerror",
    "5.5.5": "systemerror",
    "5.5.6": "syntaxerror",
    "5.7.13": "suspend",
    "5.7.16": "mesgtoobig",
    "5.7.17": "hasmoved",
    "5.7.18": "hasmoved",
    "5.7.20": "authfailure",
    "5.7.21": "authfailure",
    "5.7.22": "authfailure",
    "5.7.23": "authfailure",
    "5.7.24": "authfailure",
    "5.7.25": "requireptr",
    "5.7.26": "authfailure",
    "5.7.27": "notaccept",
    "5.7.28": "spamdetected",
    "5.7.29": "authfailure",
}
for _c in ("5.6.0", "5.6.1", "5.6.2", "5.6.3", "5.6.5", "5.6.6", "5.6.7", "5.6.8", "5.6.9"):
    STATUS_REASON[_c] = "contenterror"
for _n in range(0, 20):
    STATUS_REASON.setdefault(f"5.7.{_n}", "securityerror")


def status_reason(status: str) -> str:
    return STATUS_REASON.get(status, "")


# Phrase lists (lower-case substrings).  Regexes only where word order varies.
PHRASES: dict[str, tuple[str, ...]] = {
    "mailboxfull": (
        "exceeds allowed size",
        "account is over quota",
        "account is full",
        "account has exceeded",
        "boite du destinataire pleine",
        "disk quota exceeded",
        "exceeded storage allocation",
        "exceeding its mailbox quota",
        "full mailbox",
        "mailbox exceeded the local limit",
        "mailbox full",
        "mailbox is full",
        "mailbox quota usage exceeded",
        "mailbox size limit exceeded",
        "maildir over quota",
        "maildir delivery failed: userdisk quota ",
        "mailfolder is full",
        "not enough storage space",
        "over the allowed quota",
        "quota exceeded",
        "quota violation",
        "recipient reached disk quota",
        "recipient rejected: mailbox would exceed maximum allowed storage",
        "the user's space has been used up",
        "user has exceeded quota",
        "user has too many messages on the server",
        "user is over quota",
        "user is over the quota",
        "user over quota",
        "user's disk quota exceeded",
        "mailbox has exceeded",
        "over quota",
        "mailbox is over quota",
        "would be over the allowed quota",
        "quota full",
        "is over quota",
        "exceeds quota",
        "exceeded their quota",
        "no space left on device",
        "mailbox has reached",
        "inbox is full",
        "user's mailbox is full",
        "452 insufficient disk space",
        "account disabled temporarly for exceeding receiving limits",
        "mailbox exceeds allowed size",
        "not sufficient disk space",
        "quota violation for",
        "too much mail data",
    ),
    "mesgtoobig": (
        "exceeded maximum inbound message size",
        "line limit exceeded",
        "max message size exceeded",
        "message file too big",
        "message length exceeds administrative limit",
        "message size exceeds fixed limit",
        "message size exceeds fixed maximum message size",
        "message size exceeds maximum value",
        "message too big",
        "message too large",
        "size limit exceeded",
        "taille limite du message atteinte",
        "the message you sent was too big",
        "message is too large",
        "message exceeds maximum size",
        "email is too large",
        "exceeds size limit",
    ),
    "exceedlimit": (
        "message header size exceeds limit",
        "message too large for this recipient",
        "limit exceeded",
        "message size exceeds the limit set by the recipient",
    ),
    "suspend": (
        "is inactive",
        "temporary locked",
        "temporarily locked",
        "recipient account is blocked",
        "compte du destinataire est bloque",
        "account disabled",
        "account has been disabled",
        "account has been suspended",
        "account is disabled",
        "account is inactive",
        "account is suspended",
        "account not active",
        "account suspended",
        "boite du destinataire archivee",
        "email account that you tried to reach is disabled",
        "invalid/inactive user",
        "is a deactivated mailbox",
        "is unavailable: user is terminated",
        "mailbox currently suspended",
        "mailbox disabled",
        "mailbox is frozen",
        "mailbox unavailable or access denied",
        "recipient rejected: temporarily inactive",
        "recipient suspend the service",
        "this account has been disabled",
        "this mailbox is disabled",
        "user or domain is disabled",
        "user suspended",
        "vdelivermail: account is locked",
        "account is locked",
        "user account is disabled",
        "account has been deactivated",
        "mailbox is inactive",
        "is disabled",
        "inactive account",
        " is currently suspended",
        "archived recipient",
        "has been suspended",
        "this account has been disabled or discontinued",
        "this account has been temporarily suspended",
        "this address no longer accepts mail",
        "the email account that you tried to reach is inactive",
    ),
    "hasmoved": (" has been replaced by ", "user has moved", "address has moved", "mailbox has moved"),
    "norelaying": (
        "as a relay",
        "domain isn't in my list of allowed rcpthost",
        "insecure mail relay",
        "not allowed to relay through this machine",
        "not an open relay",
        "not local host",
        "relay access denied",
        "relay denied",
        "relaying denied",
        "relay not permitted",
        "relaying mail to ",
        "specified domain is not allowed",
        "unable to relay",
        "we don't handle mail for",
        "relay prohibited",
        "no relaying",
        "relaying not allowed",
        "relay not allowed",
        "not allowed to relay",
    ),
    "authfailure": (
        "does not have authentication information",
        "fails to pass authentication",
        "//spf.pobox.com",
        "bad spf records for",
        "dmarc policy",
        "please inspect your spf settings",
        "sender policy framework (spf) fail",
        "sender policy framework violation",
        "spf (sender policy framework) domain authentication fail",
        "spf check: fail",
        "is not allowed to send mail for",
        "dkim verification failed",
        "dmarc verification failed",
        "spf validation failed",
        "unauthenticated email",
        "failed spf",
        "spf fail",
        "dkim fail",
        "dmarc rejection",
        "authentication checks failed",
        "does not pass dmarc",
        "dmarc failed",
        "spf check failed",
        "sender domain does not pass",
        "not designate",
        "spf: fail",
    ),
    "userunknown": (
        "invalid final delivery userid",
        "#5.1.1 bad address",
        "550 address invalid",
        "5.1.0 address rejected",
        "address does not exist",
        "address not present in directory",
        "address unknown",
        "can't accept user",
        "does not exist.",
        "destination addresses were unknown",
        "destination server rejected recipients",
        "email address does not exist",
        "email address could not be found",
        "invalid address",
        "invalid mailbox",
        "invalid recipient",
        "is not a known user",
        "is not a valid mailbox",
        "is not an active address at this host",
        "mailbox does not exist",
        "mailbox invalid",
        "mailbox is unavailable",
        "mailbox not present",
        "mailbox not found",
        "mailbox unavailable",
        "no account by that name here",
        "no existe dicha persona",
        "no existe ese usuario",
        "no mail box available for this user",
        "no mailbox by that name is currently available",
        "no mailbox found",
        "no such address here",
        "no such mailbox",
        "no such person at this address",
        "no such recipient",
        "no such user",
        "no valid recipients",
        "not a valid recipient",
        "not a valid user here",
        "not a local address",
        "recipient address rejected: access denied",
        "recipient address rejected.",
        "recipient address rejected: invalid user",
        "recipient address rejected: invalid-recipient",
        "recipient address rejected: unknown user",
        "recipient address rejected: userunknown",
        "recipient does not exist",
        "recipient is not accepted",
        "recipient is not local",
        "recipient not exist",
        "recipient not found",
        "recipient not ok",
        "recipient refuses to accept your mail",
        "recipient unknown",
        "requested action not taken: mailbox unavailable",
        "resolver.adr.recipientnotfound",
        "resolver.adr.recipient notfound",
        "sorry, user unknown",
        "sorry, badrcptto",
        "sorry, no mailbox here by that name",
        "sorry, your envelope recipient has been denied",
        "the email account that you tried to reach does not exist",
        "the following recipients was undeliverable",
        "the user's email name is not found",
        "there is no one at this address",
        "this address no longer accepts mail",
        "this email address is wrong or no longer valid",
        "this recipient is in my badrecipientto list",
        "this recipient is not in my validrcptto list",
        "unknown mailbox",
        "unknown recipient",
        "unknown user",
        "user does not exist",
        "user missing home directory",
        "user not active",
        "user not exist",
        "user not found",
        "user not known",
        "user unknown",
        "utilisateur inconnu",
        "invalid or unknown virtual user",
        "your envelope recipient is in my badrcptto list",
        "recipient name is not recognized",
        "no such local user",
        "addressee unknown",
        "unknown address",
        "bad destination mailbox address",
        "user doesn't exist",
        "mailbox is not available",
        "invalid recipient address",
        "non-existent user",
        "nonexistent user",
        "user is unknown",
        "no such account",
        "account does not exist",
        "the recipient's e-mail address was not found",
        "is not a valid e-mail address",
        "not our customer",
        "the email account does not exist",
        "invalid mailbox path",
        "mailbox unavaiable",
        "nessun utente simile in questo indirizzo",
        "no thank you rejected: account unavailable",
        "no valid recipients, bye",
        "not email addresses",
        "that domain or user isn't in my list of allowed rcpthosts",
        "utilisateur inconnu !",
        "weil die adresse nicht gefunden wurde oder keine e-mails empfangen kann",
    ),
    "filtered": (
        "because the recipient is not accepting mail with ",
        "http://postmaster.facebook.com/",
        "permission denied. command output: ",
        "this account is protected by",
        "user not found:",
        "user reject",
        "we failed to deliver mail because the following address recipient id refuse to receive mail",
        "you have been blocked by the recipient",
        "due to sender's domain or address",
        "recipient refuses your mail",
        "the recipient has chosen not to receive",
        "bounced address",
        "has restricted sms e-mail",
        "is not accepting any mail",
        "message filtered",
        "message rejected due to user rules",
        "not found recipient account",
        "recipient id refuse to receive mail",
        "recipient is only accepting mail from specific email addresses",
        "refused due to recipient preferences",
        "user not found",
        "user refuses to receive this mail",
    ),
    "requireptr": (
        "mismatches client ip",
        "cannot find your hostname",
        "client host rejected: cannot find your hostname",
        "fix reverse dns for",
        "ips with missing ptr records",
        "no ptr record found",
        "please get a custom reverse dns name from your isp for your host",
        "ptr record setup",
        "reverse dns failed",
        "reverse dns required",
        "sender ip reverse lookup rejected",
        "the ip address sending this message does not have a ptr record setup",
        "the corresponding forward dns entry does not point to the sending ip",
        "this system will not accept messages from servers/devices with no reverse dns",
        "unresolvable relay host name",
        "we do not accept mail from hosts with dynamic ip or generic dns ptr-records",
        "reverse dns lookup",
        "no reverse dns",
        "reverse lookup failed",
        "does not have a ptr record",
        "client host rejected: unknown",
        "reverse hostname",
        "access denied. ip name lookup failed",
        "all mail servers must have a ptr record with a valid reverse dns entry",
        "bad dns ptr resource record",
        "cannot resolve your address.",
        "no ptr record found.",
    ),
    "notcompliantrfc": (
        "multiple addresses in from:",
        "this message is not rfc 5322 compliant",
        "https://support.google.com/mail/?p=rfcmessagenoncompliant",
        "duplicate header",
        "multiple addresses in from: header are not accepted",
        "not rfc 5322 compliant",
        "rfcmessagenoncompliant",
        "message is not rfc",
        "header is not rfc",
    ),
    "badreputation": (
        "temporarily deferred due to unexpected volume or user complaints",
        "has been temporarily rate limited due to ip reputation",
        "ip/domain reputation problems",
        "likely unsolicited mail",
        "poor reputation",
        "low reputation",
        "sender reputation",
        "bad reputation",
        "https://support.google.com/mail/?p=unsolicitedipaddresses",
    ),
    "contenterror": (
        "improper use of 8-bit data in message header",
        "message header size, or recipient list, exceeds policy limit",
        "message mime complexity exceeds the policy maximum",
        "routing loop detected -- too many received: headers",
        "this message contain invalid mime headers",
        "this message contain improperly-formatted binary content",
        "this message contain text that uses unnecessary base64 encoding",
        "invalid mime",
        "mime header",
    ),
    "rejected": (
        "purported responsible address",
        "<> invalid sender",
        "administrative prohibition",
        "batv failed to verify",
        "batv validation failure",
        "backscatter protection detected an invalid or expired email address",
        "bogus mail from",
        "connections not accepted from servers without a valid sender domain",
        "denied by secumail valid-address-filter",
        "domain of sender address",
        "email address is on senderfilterconfig list",
        "emetteur invalide",
        "empty email address",
        "empty envelope senders not allowed",
        "from: domain is invalid. please provide a valid from:",
        "fully qualified email address required",
        "invalid domain, see <url:",
        "invalid sender",
        "is not a registered gateway user",
        "mail from not owned by user",
        "mailfrom domain is listed in spamhaus",
        "null sender is not allowed",
        "returned mail not accepted here",
        "rfc 1035 violation",
        "sender address has been blacklisted",
        "sender email address rejected",
        "sender is in my badmailfrom list",
        "sender is spammer",
        "sender not pre-approved",
        "sender rejected",
        "sender domain is empty",
        "sender verify failed",
        "sender was rejected",
        "server does not accept mail from",
        "the message has been rejected by batv defense",
        "the sender's address was rejected",
        "this server does not accept mail from",
        "transaction failed unsigned dsn for",
        "unroutable sender address",
        "you are not allowed to post to this mailing list",
        "your access to submit messages to this e-mail system has been rejected",
        "your email address has been blacklisted",
        "sender address rejected",
        "domain of sender address does not exist",
        "sender domain must exist",
        "sender unknown",
        "not accept mail from you",
        "access denied (in reply to mail from command)",
        "access denied (sender blacklisted)",
        "address rejected",
        "because the sender isn't on the recipient's list of senders to accept mail from",
        "can't determine purported responsible address",
        "denied [bouncedeny]",
        "delivery not authorized, message refused",
        "does not exist e2110",
        "domain of sender address ",
        "envelope blocked - ",
        "error: no third-party dsns",
        "message rejected: email address is not verified",
        "mx records for ",
        "recipient addresses rejected : access denied",
        "recipient not accepted. (batv: no tag",
        "rfc 1035 violation: recursive cname records for",
        "rule imposed mailbox access for",
        "sending this from a different address or alias using the ",
        "sender is in my black list",
        "spam reporting address",
        "syntax error: empty email address",
        "you are sending to/from an address that has been blacklisted",
    ),
    "hostunknown": (
        "all host address lookups failed permanently",
        "all relevant mx records point to non-existent hosts",
        "domain does not exist",
        "domain is not reachable",
        "domain must exist",
        "domain name not found",
        "domain not found",
        "host or domain name not found",
        "host unknown",
        "host unreachable",
        "mail domain mentioned in email address is unknown",
        "name or service not known",
        "no such domain",
        "recipient address rejected: unknown domain name",
        "recipient domain must exist",
        "the account or domain may not exist",
        "unknown host",
        "unroutable address",
        "unrouteable address",
        "unknown domain",
        "no mx record",
        "host not found",
        "domain name is not valid",
        "mx records point to non-existent hosts",
        "name server: .: host not found",
    ),
    "spamdetected": (
        " - spam",
        "//www.spamhaus.org/help/help_spam_16.htm",
        "//dsbl.org/help/help_spam_16.htm",
        "//mail.163.com/help/help_spam_16.htm",
        "554 5.7.0 reject, id=",
        "appears to be unsolicited",
        "blacklisted url in message",
        "block for spam",
        "blocked by policy: no spam please",
        "blocked by spamassassin",
        "classified as **spam**",
        "content filter rejection",
        "cyberoam anti spam engine has identified this email as a bulk email",
        "denied due to spam list",
        "high probability of spam",
        "is classified as spam and is rejected",
        "listed in work.drbl.imedia.ru",
        "the mail server detected your message as spam and has prevented delivery",
        "mail appears to be unsolicited",
        "mail content denied",
        "may consider spam",
        "message considered as spam or virus",
        "message contains spam or virus",
        "message content rejected",
        "message detected as spam",
        "message filtered",
        "message filtered. please see the faqs section on spam",
        "message filtered. refer to the troubleshooting page at",
        "message looks like spam",
        "message is being rejected as it seems to be a spam",
        "message refused by mailmarshal spamprofiler",
        "message refused by trustwave seg spamprofiler",
        "message rejected as spam",
        "message rejected because of unacceptable content",
        "message rejected due to suspected spam content",
        "message rejected for policy reasons",
        "message was rejected for possible spam/virus content",
        "our email server thinks this email is spam",
        "our system has detected that this message is ",
        "probable spam",
        "reject bulk.advertising",
        "rejected as bulk",
        "rejected due to spam",
        "rejected by antispam",
        "rejected by spam filter",
        "rejected: spam",
        "sender domain listed at ",
        "sending address not accepted due to spam filter",
        "spam blocked",
        "spam check",
        "spam content matched",
        "spam detected",
        "spam email",
        "spam email not accepted",
        "spam message rejected.",
        "spam not accepted",
        "spam refused",
        "spam rejection",
        "spam score ",
        "spambouncer identified spam",
        "spamming not allowed",
        "too many spam complaints",
        "too much spam.",
        "the email message was detected as spam",
        "the message has been rejected by spam filtering engine",
        "the message was rejected due to classification as bulk mail",
        "the content of this message looked like spam",
        "this message appears to be spam",
        "this message has been identified as spam",
        "this message scored ",
        "this message was classified as spam",
        "this message was rejected by recurrent pattern detection system",
        "transaction failed spam message not queued",
        "we dont accept spam",
        "your email appears similar to spam we have received before",
        "your email breaches local uribl policy",
        "your email had spam-like ",
        "your email is considered spam",
        "your email is probably spam",
        "your email was detected as spam",
        "your message as spam",
        "your message has been temporarily blocked by our filter",
        "your message has been rejected because it appears to be spam",
        "your message has triggered a spam block",
        "your message may contain the spam contents",
        "your message failed several antispam checks",
        "likely to be spam",
        "as spam",
        "identified as spam",
        "detected as spam",
        "spam filter",
        "uce",
        "bulk email",
    ),
    "speeding": (
        "please try again slower",
        "receiving mail at a rate that prevents additional messages from being delivered",
        "rate limited",
        "ratelimit",
        "rate limit",
        "sending too fast",
        "too many messages",
    ),
    "toomanyconn": (
        "frequency limited",
        "all available ips are at maximum connection limit",
        "connection rate limit exceeded",
        "exceeds per-domain connection limit for",
        "has exceeded the max emails per hour ",
        "throttling failure: daily message quota exceeded",
        "throttling failure: maximum sending rate exceeded",
        "too many connections",
        "too many connections from your host.",
        "too many concurrent smtp connections",
        "too many errors from your ip",
        "too many recipients",
        "too many smtp sessions for this host",
        "trop de connexions, ",
        "we have already made numerous attempts to deliver this message",
        "too many simultaneous connections",
    ),
    "blocked": (
        " said: 550 blocked",
        "//www.spamcop.net/bl.",
        "bad sender ip address",
        "banned sending ip",
        "blacklisted by",
        "blocked using ",
        "blocked - see http",
        "dnsbl:attrbl",
        "client host rejected: abus detecte gu_eib_02",
        "client host rejected: abus detecte gu_eib_04",
        "client host rejected: may not be mail exchanger",
        "client host rejected: was not authenticated",
        "confirm this mail server",
        "connection dropped",
        "connection refused by",
        "connection reset by peer",
        "connection was dropped by remote host",
        "connections not accepted from ip addresses on spamhaus xbl",
        "currently sending spam see: ",
        "domain does not exist:",
        "dynamic/zombied/spam ips blocked",
        "error: no valid recipients from ",
        "esmtp not accepting connections",
        "extreme bad ip profile",
        "go away",
        "helo command rejected:",
        "host network not allowed",
        "hosts with dynamic ip",
        "invalid ip for sending mail of domain",
        "is in a black list",
        "is not allowed to send from <",
        "listed in cbl",
        "mail server at ",
        "mail refused - ",
        "messages from ",
        "no access from mail server",
        "no matches to nameserver query",
        "not currently accepting mail from your ip",
        "part of their network is on our block list",
        "please use the smtp server of your isp",
        "refused - see http",
        "rejected - multi-blacklist",
        "rejected because the sending mta or the sender has not passed validation",
        "rejecting open proxy",
        "sender ip address rejected",
        "server access forbidden by your ip ",
        "service not available, closing transmission channel",
        "smtp error from remote mail server after initial connection:",
        "sorry, that domain isn't in my list of allowed rcpthosts",
        "sorry, your remotehost looks suspiciously like spammer",
        "to submit messages to this e-mail system has been rejected",
        "too many spams from your ip",
        "too many unwanted messages have been sent from the following ip address above",
        "was blocked by ",
        "we do not accept mail from dynamic ips",
        "you are not allowed to connect",
        "you are sending spam",
        "your ip address is listed in the rbl",
        "your network is temporary blacklisted",
        "your server requires confirmation",
        "blocked by spamhaus",
        "listed on spamhaus",
        "blocklist",
        "blacklist",
        "block list",
        "rbl",
        "dnsbl",
        "ip address is blocked",
        "your ip",
        "has been blocked",
        "not accepting connections",
        "bad reputation",
    ),
    "virusdetected": (
        "it has a potentially executable attachment",
        "message was rejected because it contains a virus",
        "virus detected",
        "virus found",
        "infected with",
        "contains a virus",
        "malware",
        "the message was rejected because it contains prohibited virus or spam content",
        "this form of attachment has been used by recent viruses or other malware",
        "your message was infected with a virus",
    ),
    "policyviolation": (
        "header error",
        "denied by policy",
        "an illegal attachment on your message",
        "because the recipient is not accepting mail with attachments",
        "because the recipient is not accepting mail with embedded images",
        "by the end-user's policy",
        "contains prohibited",
        "email not accepted for policy reasons",
        "email rejected due to security policies",
        "message bounced due to organizational settings",
        "message given low priority",
        "message not accepted for policy reasons",
        "message rejected due to local policy",
        "rejected for policy reasons",
        "protocol violation",
        "the email address used to send your message is not subscribed to this group",
        "the message was rejected by organization policy",
        "this message was blocked because its content presents a potential",
        "we do not accept messages containing images or other attachments",
        "you're using a mass mailer",
        "local policy",
        "violates our policy",
        "violation of policy",
        "policy reasons",
        "organization policy",
        "due to policy",
    ),
    "securityerror": (
        "unauthenticated senders",
        "smtp authentication",
        "required authentication level",
        "authentication failed; server ",
        "authentication turned on in your email client",
        "authentication required",
        "authorization failure",
        "ciphertext too long",
        "could not authenticate",
        "encryption required",
        "insecure",
        "must issue a starttls command first",
        "negotiation failed",
        "sorry, you don't authenticate or the domain isn't in my list of allowed rcpthosts",
        "starttls is required",
        "tls required",
        "user not authenticated",
        "authentication is required",
        "account is not authorized",
        "must be authenticated",
    ),
    "systemerror": (
        "aliasing/forwarding loop broken",
        "can't create user output file",
        "could not load drd for domain",
        "internal error reading data",
        "internal server error: operation now in progress",
        "interrupted system call",
        "it encountered an error while being processed",
        "it would create a mail loop",
        "local configuration error",
        "local error in processing",
        "loop was found in the mail exchanger",
        "loops back to myself",
        "mail system configuration error",
        "queue file write error",
        "recipient deferred because there is no mdb",
        "remote server is misconfigured",
        "server configuration error",
        "service currently unavailable",
        "system config error",
        "timeout waiting for input",
        "transaction failed ",
        "mail for ",
        "internal error",
        "system error",
        "configuration error",
        "unable to deliver the message",
        "server error",
    ),
    "networkerror": (
        "malformed or unexpected name server reply",
        "too many hops",
        "hop count exceeded",
        "routing loop",
        "loop detected",
        "mail loop",
        "wasn't able to establish an smtp connection",
        "dns error",
        "could not connect and send the mail to",
        "dns records for the destination computer could not be found",
        "hop count exceeded - possible mail loop",
        "host is unreachable",
        "host name lookup failure",
        "host not found, try again",
        "mail forwarding loop for ",
        "malformed mail header",
        "maximum forwarding loop count exceeded",
        "message looping",
        "message probably in a routing loop",
        "name server failure",
        "network is unreachable",
        "no route to host",
        "server could not be contacted",
        "too many hops",
        "unable to resolve route ",
        "unrouteable mail domain",
        "could not be resolved",
        "name server timeout",
        "lost connection",
    ),
    "systemfull": (
        "insufficient disk space",
        "mail system full",
        "requested mail action aborted: exceeded storage allocation",
        "insufficient system storage",
        "insufficient system resources",
        "system storage",
    ),
    "notaccept": (
        "couldn't find a mail exchanger",
        "doesn't receive email",
        "scored as spam",
        "no mx found",
        "indicated no smtp service",
        "does not accept mail",
        "host does not accept mail",
        "mail receiving disabled",
        "name server: .: host not found",
        "no mx record found",
        "null mx",
        "smtp protocol returned a permanent error",
        "does not accept email",
        "domain does not receive mail",
        "not accepting mail",
    ),
    "expired": (
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
        "delay",
        "deferred",
    ),
    "mailererror": (
        "x-unix; ",
        "command died with status",
        "command failed:",
        "command output:",
        "command time limit exceeded",
        "exit ",
        "error in command",
        "mailer error",
        "procmail:",
        "bin/procmail",
        "program exited",
        "pipe to |",
        "permission denied",
        "unknown mailer error",
    ),
    "onhold": (),
    "failedstarttls": ("starttls", "tls negotiation"),
    "suppressed": ("suppression list", "is on the suppression list"),
    "syntaxerror": (
        "malformed address",
        "syntax error",
        "command unrecognized",
        "unrecognized command",
        "bad syntax",
    ),
}

# Word-order-free pairs for the richest reasons (each part must appear, in order).
PAIRS: dict[str, tuple[tuple[str, ...], ...]] = {
    "userunknown": (
        ("<", "> not found"),
        ("<", ">... blocked by "),
        ("account ", " does not exist at the organization"),
        ("mailbox ", "unavailable or access denied"),
        ("no ", " in name directory"),
        ("rcpt (", "t exist "),
        ("said: 550", "5.1.1 ", " user unknown "),
        ("mailbox ", "does not exist"),
        ("non", "existent user"),
        ("recipient ", " was not found in"),
        ("user ", " was not found"),
        ("user ", " does not exist"),
        ("user (", ") unknown"),
        ("unknown e", "mail address"),
        ("unknown local", "part"),
        ("recipient address rejected: user ", " does not exist"),
        ("recipient address rejected: user unknown in ", "table"),
        ("rcpt <", " does not exist"),
        ("account ", " does not exist"),
        ("this user doesn't have a ", " account"),
    ),
    "mailboxfull": (
        ("account is ", " quota"),
        ("disk", "quota"),
        ("enough ", " space"),
        ("mailbox ", "exceeded", " limit"),
        ("mailbox ", "quota"),
        ("maildir ", "quota"),
        ("over ", "quota"),
        ("quota ", "exceeded"),
        ("mailbox ", " is full"),
        ("user ", " over quota"),
        ("mail", "box", " full"),
    ),
    "requireptr": (
        ("domain ", " mismatches client ip"),
        ("dns lookup failure: ", " try again later"),
        ("reverse dns lookup for host ", " failed permanently"),
        ("server access ", " forbidden by invalid rdns record of your mail server"),
        ("service permits ", " unverifyable sending ips"),
    ),
    "blocked": (
        ("ip ", " blocked"),
        ("ip ", " blacklisted"),
        ("ip ", " listed"),
        ("client host ", " blocked"),
        ("access from ip address ", " blocked"),
        ("connection ", "rejected"),
    ),
    "rejected": (("sender ", " rejected"), ("domain ", " rejected")),
    "hostunknown": (("domain ", " not exist"), ("host ", " not found")),
    "suspend": (("account ", " disabled"), ("mailbox ", " disabled"), ("user ", " suspended")),
    "norelaying": (("relay", " denied"), ("relay", " not permitted")),
    "spamdetected": (("spam", " rejected"), ("message ", " spam")),
}

_WORD_ONLY = frozenset({"uce", "rbl", "dnsbl", "delay", "exit ", "insecure"})


def _word(text: str, phrase: str) -> bool:
    """Short tokens must stand alone, else 'uce' would match 'produce'."""
    return re.search(r"(?<![a-z])" + re.escape(phrase.strip()) + r"(?![a-z])", text) is not None


# Phrases that look like a reason's but mean something else ("recipient address rejected"
# is about the recipient, not the sender the "rejected" reason is about).
NOT_PHRASES: dict[str, tuple[str, ...]] = {
    "rejected": ("5.1.0 address rejected", "recipient address rejected", "sender ip address rejected"),
}


def matches(reason: str, text: str) -> bool:
    """Does lower-cased `text` carry one of `reason`'s phrases?"""
    if not text:
        return False
    if any(p in text for p in NOT_PHRASES.get(reason, ())):
        return False
    for phrase in PHRASES.get(reason, ()):
        if phrase in _WORD_ONLY:
            if phrase.strip() in text and _word(text, phrase):
                return True
        elif phrase in text:
            return True
    return any(_aligned(text, parts) for parts in PAIRS.get(reason, ()))


def _aligned(text: str, parts: tuple[str, ...]) -> bool:
    pos = 0
    for p in parts:
        idx = text.find(p, pos)
        if idx < 0:
            return False
        pos = idx + len(p)
    return True


def text_reason(text: str) -> str:
    """Best reason from text alone (used for subject lines and free text)."""
    low = text.lower()
    for reason in ALL_ORDER:
        if matches(reason, low):
            return reason
    return ""


# Probe order of the first pass: specific reasons before generic ones.
FIRST_ORDER = (
    "mailboxfull",
    "mesgtoobig",
    "exceedlimit",
    "suspend",
    "hasmoved",
    "norelaying",
    "authfailure",
    "userunknown",
    "filtered",
    "requireptr",
    "notcompliantrfc",
    "badreputation",
    "contenterror",
    "rejected",
    "hostunknown",
    "spamdetected",
    "speeding",
    "toomanyconn",
    "blocked",
)
SECOND_ORDER = (
    "mailboxfull",
    "authfailure",
    "badreputation",
    "speeding",
    "spamdetected",
    "virusdetected",
    "policyviolation",
    "norelaying",
    "notaccept",
    "systemerror",
    "networkerror",
    "suspend",
    "contenterror",
    "systemfull",
    "notaccept",
    "expired",
    "securityerror",
    "mailererror",
)
ALL_ORDER = (
    "mailboxfull",
    "mesgtoobig",
    "exceedlimit",
    "suspend",
    "userunknown",
    "filtered",
    "rejected",
    "hostunknown",
    "spamdetected",
    "speeding",
    "toomanyconn",
    "blocked",
    "authfailure",
    "securityerror",
    "systemerror",
    "networkerror",
    "expired",
    "contenterror",
    "hasmoved",
    "systemfull",
    "notaccept",
    "mailererror",
    "norelaying",
    "syntaxerror",
)

# Reasons whose phrases outrank a plain x.1.1 status (the text says more than the code).
_USER_VETO = ("norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept")
# Commands sent before DATA: a rejection there cannot be a content filter.
_BEFORE_DATA = frozenset({"CONN", "HELO", "EHLO", "MAIL", "RCPT"})


def _probe(reason: str, hit: Hit, low: str, by_status: str) -> bool:
    if hit.reason == reason:
        return True  # a detector's own guess stands when nothing more specific matched first
    if by_status == "suspend" and reason in ("userunknown", "filtered"):
        return False
    if reason == "userunknown":
        if by_status == "userunknown":
            return not any(matches(r, low) for r in _USER_VETO)
        # without a x.1.1 code, "no such user" only means a missing mailbox when the
        # server said it in answer to RCPT; elsewhere it is a filter posing as one
        return hit.command == "RCPT" and matches(reason, low)
    if reason == "filtered":
        if by_status == "filtered":
            return matches("userunknown", low) or matches("filtered", low)
        if hit.command in _BEFORE_DATA:
            return False
        return matches("filtered", low) or matches("userunknown", low)
    if reason == "suspend" and hit.reply_code == "525":
        return True  # 525: user account disabled
    if reason == "rejected" and by_status != reason:
        # a sender-side refusal by text: only when the reply came at MAIL FROM, at DATA
        # (unless the code says the user is unknown), or when the code names nothing better
        if hit.command == "MAIL" or (hit.command == "DATA" and by_status != "userunknown"):
            return matches(reason, low)
        return by_status in ("", "securityerror", "systemerror") and matches(reason, low)
    if reason == "contenterror" and by_status == reason and matches("spamdetected", low):
        return False
    if reason == "hostunknown" and _temporary(hit):
        return False  # a DNS failure that will be retried is a network problem, not a missing domain
    if by_status == reason:
        return True
    if reason == "blocked" and by_status in ("userunknown", "hostunknown"):
        # a 5.1.x that talks about block lists is still about the address
        return False
    return matches(reason, low)


def _temporary(hit: Hit) -> bool:
    return hit.status.startswith("4") or hit.reply_code.startswith("4") or hit.action == "delayed"


def classify(hit: Hit) -> str:
    """The Sisimai-vocabulary reason for one recipient."""
    if hit.reason and hit.reason not in RETRY:
        return hit.reason
    provider = remote_reason(hit)
    if provider:
        return provider
    low = hit.diagnostic.lower()
    by_status = status_reason(hit.status)
    if not hit.diagnostic_type.startswith("X-UNIX"):
        for reason in FIRST_ORDER:
            if _probe(reason, hit, low, by_status):
                return reason
    if hit.reason:
        return hit.reason
    return _fallback(hit, low, by_status)


def _fallback(hit: Hit, low: str, by_status: str) -> str:
    if by_status and by_status not in RETRY and hit.diagnostic_type in ("", "SMTP"):
        return by_status
    for reason in SECOND_ORDER:
        if matches(reason, low):
            return reason
    if matches("hostunknown", low) and _temporary(hit):
        return "networkerror"
    if "access denied" in low:
        return "rejected"
    if by_status:
        return by_status
    for check in _CLASS_FALLBACKS:
        found = check(hit, low)
        if found:
            return found
    return "onhold" if low.strip() else "undefined"


def _class_level(hit: Hit, low: str) -> str:
    head = hit.status[:3]
    if head in ("5.6", "4.6"):
        return "contenterror"
    if head in ("5.7", "4.7"):
        return "securityerror"
    return ""


def _mailer(hit: Hit, low: str) -> str:
    return "mailererror" if hit.diagnostic_type.upper().startswith("X-UNIX") else ""


def _syntax(hit: Hit, low: str) -> str:
    code = hit.reply_code
    if code in ("500", "501", "502", "503", "504") or matches("syntaxerror", low):
        return "syntaxerror"
    return ""


def _delayed(hit: Hit, low: str) -> str:
    return "expired" if hit.action in ("delayed", "expired") else ""


def _helo(hit: Hit, low: str) -> str:
    return "blocked" if hit.command in ("HELO", "EHLO") else ""


_CLASS_FALLBACKS: tuple[Callable[[Hit, str], str], ...] = (_class_level, _mailer, _syntax, _delayed, _helo)


def is_hard(reason: str, status: str, reply_code: str, action: str = "failed") -> bool:
    """Sisimai's hard/soft split: address-level reasons are permanent.

    "notaccept" (null MX, no SMTP service) is permanent unless the status code is temporary.
    """
    if reason in HARD_REASONS:
        return True
    if reason == "notaccept":
        return not status.startswith("4")
    return False
