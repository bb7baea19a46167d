"""Every mail mailflow sends, one spec each: the facts about a mail that the outbox, dispatch, customer
service's resend, the bounce consequences, the retry command and `mailflow preview` each need. Adding a mail
is a template folder (templates/<name>/) and one line here; the lists the rest of the code reads are derived
below, so no list can forget it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MailSpec:
    name: str
    # What customer service calls the mail on the dashboard (the seed's own words where it has them).
    title: str
    # The context key holding the mail's raw one-time link: needed to render the mail, erased from the
    # outbox row once it is final (mailflow.mail.states), so the row alone cannot send it again.
    link_key: str | None = None
    # The mail that verifies an account's address (its link completes at /verify with the password):
    # sent again with a fresh link, its bounce and its forwarding tell customer service the address is
    # not the holder's.
    verification: bool = False
    # A recovery mail support sends again as what it is for today: a fresh link, a current list.
    recovery: bool = False
    # Why customer service cannot send it again (zh-TW, shown to staff); None when it can.
    not_resendable: str | None = None
    # Read by staff, not by an applicant.
    staff: bool = False
    # Sent for the pass system through POST /api/v1/notifications (its templates/<name>/meta.toml).
    api: bool = False


MAILS: tuple[MailSpec, ...] = (
    MailSpec("registration-received", "通行證系統帳號註冊通知信件"),
    MailSpec("account-approved", "帳號審核通過通知(Email 驗證連結)", link_key="verify_url",
             verification=True),
    MailSpec("account-rejected", "帳號未審核通過通知"),
    MailSpec("document-approved", "通行證系統公司文件審核通知信件"),
    MailSpec("document-rejected", "公司文件未審核通過通知"),
    MailSpec("verify-reminder", "Email 驗證提醒", link_key="verify_url", verification=True),
    MailSpec("binding-request", "共用帳號綁定確認信", link_key="confirm_url",
             not_resendable="共用帳號綁定確認信無法由客服重寄,請申請人重新送出綁定申請。"),
    MailSpec("support-digest", "客服每日摘要", staff=True),
    # Notice to the other side when a shared-account binding is ended.
    MailSpec("binding-ended", "共用帳號綁定解除通知"),
    # Self-service by mail: recovery and changes the holder makes.
    MailSpec("password-reset", "重設密碼通知信件", link_key="reset_url", recovery=True),
    MailSpec("password-changed", "密碼變更通知"),
    MailSpec("account-reminder", "帳號查詢通知", recovery=True),
    MailSpec("email-change", "變更Email確認信件(寄到新的Email)", link_key="verify_url",
             not_resendable="變更Email確認信無法由客服重寄,請申請人登入後重新申請變更 Email。"),
    MailSpec("email-changed", "Email變更通知(寄到原來的Email)",
             not_resendable="Email變更通知只寄給原來的Email,無法重寄;如需協助,請為申請人更正 Email。"),
    MailSpec("pass-issued", "通行證核發通知", api=True),
    MailSpec("pass-expiring", "通行證即將到期", api=True),
)

CATALOG: dict[str, MailSpec] = {spec.name: spec for spec in MAILS}

TEMPLATE_NAMES = tuple(CATALOG)
SECRET_CONTEXT_KEYS = tuple(sorted({spec.link_key for spec in MAILS if spec.link_key}))
VERIFICATION_TEMPLATES = tuple(spec.name for spec in MAILS if spec.verification)
RECOVERY_TEMPLATES = tuple(spec.name for spec in MAILS if spec.recovery)
NOT_RESENDABLE = {spec.name: spec.not_resendable for spec in MAILS if spec.not_resendable}
# Mails whose one-time link is erased once final: the key that must be filled again to send it again.
LINK_KEYS = {spec.name: spec.link_key for spec in MAILS if spec.link_key}
MAIL_TITLES = {spec.name: spec.title for spec in MAILS}
