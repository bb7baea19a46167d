"""`userunknown`: the recipient's mailbox does not exist (RFC 3463 x.1.1).

Permanent. Without an x.1.1 code the words count only when the server said them to RCPT TO.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason
from mailflow.inbound.bounce.reasons.facts import Facts

# Other reasons whose words outrank a plain x.1.1 code: the text says more than the code.
OUTRANKED_BY = ("norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept")


# A failed lookup of the address in the recipient system's own directory (Exchange's resolver,
# Domino's directory): about the address whatever SMTP command it followed, never a content filter.
DIRECTORY_LOOKUP = (
    "recipient name is not recognized",  # Exchange 2000/2003 NDR for 5.1.1
    "resolver.adr.recipnotfound",  # Exchange Online / 2007+ NDR 5.1.1
    # Exchange Online NDR 5.1.10 "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address
    # lookup" (Microsoft's NDR reference): Microsoft's 5.1.10, not RFC 7505's null MX
    "resolver.adr.recipientnotfound",
    "recipient not found by smtp address lookup",
    "not listed in domino directory",  # HCL/IBM Domino router
)


def _address_status(status: str) -> bool:
    """RFC 3463 subject 1, "Addressing Status", with a detail no registry names (Exchange's 5.1.351):
    the failure is about the address, so "unknown user" words are not a content filter's."""
    return status[1:3] == ".1" and status not in ("5.1.0", "4.1.0")


def rule(f: Facts) -> bool:
    if f.by_status == "suspend":
        return False
    if any(phrase in f.low for phrase in DIRECTORY_LOOKUP):
        return True
    if f.by_status == "userunknown":
        return not any(f.says(other) for other in OUTRANKED_BY)
    if _address_status(f.hit.status) and f.says("userunknown"):
        return not any(f.says(other) for other in OUTRANKED_BY)
    # without an x.1.1 code, "no such user" only means a missing mailbox when the server said it in
    # answer to RCPT, or when the recipient's own host said it of its own mailbox (LOCAL: no SMTP at
    # all, see detectors/rfc3464.py); said after DATA it is a filter posing as one
    return f.hit.command in ("RCPT", "LOCAL") and f.says("userunknown")


REASON = Reason(
    name="userunknown",
    codes=("5.1.0", "5.1.1", "5.1.3"),
    documented=(
        (
            "not listed in domino directory",
            "HCL/IBM Domino router: 'User ... not listed in Domino Directory'",
        ),
        ("user unknown", "sendmail '550 5.1.1 <addr>... User unknown'; Postfix 'User unknown in ... table'"),
        ("unknown user", "Postfix local(8)/virtual(8): 'unknown user: \"name\"'"),
        ("no such user", "RFC 5321 Appendix D scenario: '550 No such user here'"),
        (
            "sorry, no mailbox here by that name",
            "qmail 1.03 qmail-local: 'Sorry, no mailbox here by that name. (#5.1.1)'",
        ),
        ("bad destination mailbox address", "RFC 3463 X.1.1 'Bad destination mailbox address'"),
        (
            "recipient name is not recognized",
            "Exchange 2000/2003 NDR: 'The recipient name is not recognized'",
        ),
        (
            "resolver.adr.recipnotfound",
            "Exchange Online NDR 550 5.1.1 'RESOLVER.ADR.RecipNotFound; not found'",
        ),
        ("recipient not found", "Exchange NDR 550 5.1.10 'Recipient not found by SMTP address lookup'"),
        (
            "the recipient's e-mail address was not found",
            "Exchange 2007 DSN text ('... was not found in the recipient's e-mail system')",
        ),
        ("the email account that you tried to reach does not exist", "Gmail SMTP errors, 550 5.1.1"),
        (
            "mailbox not found",
            "Yahoo SMTP error codes: '552 1 Requested mail action aborted, mailbox not found'",
        ),
        (
            "this user doesn't have a",
            "Yahoo SMTP error codes: '554 delivery error: dd This user doesn't have a ... account'",
        ),
        ("no such recipient", "Exim and Courier wording: 'No such recipient'"),
        (
            "recipient address rejected: user unknown",
            "Postfix smtpd_check.c: 'Recipient address rejected: User unknown in ... table'",
        ),
        ("utilisateur inconnu", "French: 'unknown user'"),
        ("benutzer unbekannt", "German: 'unknown user'"),
        ("empfänger unbekannt", "German: 'unknown recipient'"),
        ("usuario desconocido", "Spanish: 'unknown user'"),
        ("utente sconosciuto", "Italian: 'unknown user'"),
        ("usuário desconhecido", "Portuguese: 'unknown user'"),
        ("用户不存在", "Chinese: 'user does not exist'"),
        ("收件人不存在", "Chinese: 'recipient does not exist'"),
        ("使用者不存在", "Chinese (Taiwan): 'user does not exist'"),
        ("帳號不存在", "Chinese (Taiwan): 'account does not exist'"),
    ),
    phrases=(
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
        "recipient not ok",
        "recipient refuses to accept your mail",
        "recipient unknown",
        "requested action not taken: mailbox unavailable",
        "resolver.adr.recipientnotfound",
        "resolver.adr.recipient notfound",
        "sorry, user unknown",
        "sorry, badrcptto",
        "sorry, your envelope recipient has been denied",
        "the following recipients was undeliverable",
        "the user's email name is not found",
        "there is no one at this address",
        "this address no longer accepts mail",
        "this email address is wrong or no longer valid",
        "this recipient is in my badrecipientto list",
        "this recipient is not in my validrcptto list",
        "unknown mailbox",
        "unknown recipient",
        "user does not exist",
        "user missing home directory",
        "user not active",
        "user not exist",
        "user not found",
        "user not known",
        "invalid or unknown virtual user",
        "your envelope recipient is in my badrcptto list",
        "no such local user",
        "addressee unknown",
        "unknown address",
        "user doesn't exist",
        "mailbox is not available",
        "invalid recipient address",
        "non-existent user",
        "nonexistent user",
        "user is unknown",
        "no such account",
        "account does not exist",
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
    pairs=(
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
    rule=rule,
    hard=True,
)
