"""What staff screens call each internal code: audit actions, actors, mail states, application states and
suppression reasons, in zh-TW. Pages show the label and keep the code in a tooltip (``title``); the CSV
export keeps the codes. A code without a label is shown as it is, and tests/web/test_labels.py finds every
audit action the code can write, so a new one cannot go unlabelled."""

from __future__ import annotations

from typing import Any

from mailflow.accounts.review import status_label
from mailflow.models import Account, OutboxStatus
from mailflow.support.reasons_zh import KIND_TITLES, REASON_SENTENCES

ACTION_LABELS: dict[str, str] = {
    "application.submitted": "送出帳號申請",
    "document.purged": "刪除逾期證明文件",
    "application.approved": "核准申請",
    "application.rejected": "退件",
    "verification.completed": "完成Email驗證",
    "verification.resent": "重新寄送驗證信",
    "verification.voided": "驗證連結因密碼錯誤過多而失效",
    "verification.renewed": "重新產生驗證連結(重寄郵件)",
    "shared.registered": "申請共用帳號",
    "shared.switch": "切換公司",
    "binding.requested": "送出綁定請求",
    "binding.confirmed": "確認綁定",
    "binding.ended": "解除綁定或取消請求",
    "binding.expired": "綁定請求逾期失效",
    "address_suppressed": "Email 列入停止寄送名單",
    "suppression_lifted": "解除停止寄送",
    "email_undeliverable": "Email 標記為無法送達",
    "soft_bounce_counted": "記錄一次暫時退信",
    "bounce_uncorrelated": "收到無法對應郵件的退信",
    "complaint_uncorrelated": "收到無法對應郵件的垃圾郵件檢舉",
    "report_unproven": "收到未證實的退信或檢舉",
    "inbound_forged": "收到偽造的退信",
    "autoreply_seen": "收到自動回覆",
    "support_item_opened": "建立客服項目",
    "support_item_assigned": "指派客服項目",
    "support_item_noted": "客服項目加註",
    "support_note_added": "新增客服備註",
    "support_item_resolved": "客服項目處理完成",
    "account_email_corrected": "更正 Email",
    "mail_resent": "重寄郵件",
    "password.reset_requested": "寄出重設密碼信",
    "password.reset_refused": "重設密碼連結在其他帳號的登入狀態下開啟,連結已失效",
    "password.changed": "變更密碼",
    "account.reminder_sent": "寄出帳號查詢通知",
    "email.change_requested": "申請變更 Email(確認信寄到新的 Email)",
    "email.changed": "完成變更 Email",
    "apikey.added": "新增 API 金鑰",
    "apikey.revoked": "撤銷 API 金鑰",
    "webhook.added": "新增事件通知網址(webhook)",
    "webhook.removed": "移除事件通知網址(webhook)",
}

MAIL_STATUS_LABELS: dict[str, str] = {
    OutboxStatus.QUEUED: "排隊中", OutboxStatus.SENDING: "寄送中", OutboxStatus.SENT: "已寄出",
    OutboxStatus.RETRY: "等待重試", OutboxStatus.FAILED: "寄送失敗",
    OutboxStatus.SUPPRESSED: "停止寄送(未寄出)",
}
# What a bounce says about a mail the relay accepted: it was "sent", but it did not arrive.
BOUNCE_LABELS: dict[str, str] = {
    "bounced": "已退信(無法送達)",
    "unproven": "已寄出;收到未證實的退信",
    "soft": "已寄出;暫時退信",
    "delayed": "已寄出;延遲送達通知",
}
SUPPRESSION_REASONS: dict[str, str] = {"manual": "人工加入", "complaint": "收件人檢舉為垃圾郵件"}


def action_label(code: str) -> str:
    return ACTION_LABELS.get(code, code)


def actor_label(code: str, account: object = None) -> str:
    """'staff:huang' -> 工作人員 huang; 'account:12' -> 申請人 <帳號> (when ``account`` is #12);
    'cli:root' -> 命令列(root); 'system' -> 系統."""
    kind, _, who = code.partition(":")
    if kind == "staff":
        return f"工作人員 {who}"
    if kind == "account":
        if isinstance(account, Account) and who == str(account.id):  # a page's undefined is no account
            return f"申請人 {account.account}"
        return f"申請人(帳號編號 {who})"
    if kind == "applicant":
        return f"申請人 {who}"
    if kind == "cli":
        return f"命令列({who})"
    return {"system": "系統", "demo": "示範資料"}.get(code, code)


def mail_status_label(status: str, bounce: str | None = None) -> str:
    """A mail's state as staff read it; a sent mail that bounced is not 已寄出."""
    if status == OutboxStatus.SENT and bounce in BOUNCE_LABELS:
        return BOUNCE_LABELS[bounce]
    return MAIL_STATUS_LABELS.get(status, status)


def suppression_reason_label(code: str) -> str:
    return (KIND_TITLES.get(code) or REASON_SENTENCES.get(code) or SUPPRESSION_REASONS.get(code)
            or code)


def template_globals() -> dict[str, Any]:
    """The functions the page templates call."""
    return {"action_label": action_label, "actor_label": actor_label, "mail_status_label": mail_status_label,
            "suppression_reason_label": suppression_reason_label, "status_label": status_label}
