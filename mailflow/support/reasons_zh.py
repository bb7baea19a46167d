"""The plain zh-TW words customer service reads: one sentence per Sisimai bounce reason, and the title of
each kind of support item. Staff read these to an applicant over the phone, so they avoid jargon."""

from __future__ import annotations

from mailflow.mail.catalog import MAIL_TITLES
from mailflow.models import SupportKind
from mailflow.support.items import AUTOREPLY

REASON_SENTENCES: dict[str, str] = {
    "userunknown": "收件人信箱不存在",
    "mailboxfull": "收件人信箱已滿",
    "hostunknown": "收件人網域不存在",
    "expired": "多次重試後仍無法送達",
    "filtered": "收件人信箱拒收此信(可能設定了過濾規則)",
    "rejected": "收件端拒絕了寄件人地址",
    "blocked": "收件端封鎖了我們的寄件伺服器",
    "spamdetected": "收件端判定此信為垃圾郵件",
    "policyviolation": "此信違反收件端的郵件政策",
    "securityerror": "收件端的安全檢查未通過",
    "networkerror": "網路或 DNS 錯誤,暫時無法連線到收件端",
    "systemerror": "收件端郵件系統發生錯誤",
    "mesgtoobig": "郵件太大,收件端拒收",
    "suspend": "收件人信箱已被停用",
    "hasmoved": "收件人已更換信箱地址",
    "norelaying": "收件端不允許轉寄此信",
    "toomanyconn": "寄送太頻繁,收件端暫時拒絕連線",
    "authfailure": "寄件網域驗證(SPF/DKIM/DMARC)未通過",
    "notaccept": "收件網域不接受任何郵件",
    "requireptr": "收件端要求寄件伺服器具備反查記錄(PTR)",
    "mailererror": "收件端郵件程式執行失敗",
    "contenterror": "郵件內容格式不被收件端接受",
    "onhold": "退信原因尚未確定,需人工查看",
    "badreputation": "寄件伺服器信譽不佳,收件端拒收",
    "notcompliantrfc": "郵件格式不符合網際網路標準",
    "virusdetected": "收件端判定此信含有病毒",
    "syntaxerror": "寄送過程發生指令錯誤",
    "speeding": "寄送速度過快,收件端暫時拒收",
    "exceedlimit": "郵件超過收件人信箱的大小限制",
    "systemfull": "收件端郵件系統空間已滿",
    "feedback": "收件人將此信回報為垃圾郵件",
    "failedstarttls": "收件端無法建立加密連線",
    "suppressed": "此地址已列入停止寄送名單",
    "delivered": "已送達",
    "vacation": "收件人設定了自動回覆(休假中)",
    "undefined": "無法判斷退信原因",
}

UNKNOWN_REASON = "無法判斷退信原因"

KIND_TITLES: dict[str, str] = {
    SupportKind.HARD_BOUNCE: "永久退信",
    SupportKind.SOFT_BOUNCES: "多次暫時退信",
    SupportKind.COMPLAINT: "垃圾郵件檢舉",
    SupportKind.REPLY: "申請人回信",
    SupportKind.FORWARDED_VERIFICATION: "驗證信被轉寄",
    SupportKind.UNVERIFIED: "已核准但超過 3 天未驗證",
    SupportKind.MAIL_FAILED: "寄送永久失敗",
    # Last on purpose: the dashboard lists kinds in this order, and an auto-reply is the least urgent.
    AUTOREPLY: "自動回覆(低優先)",
}

# Sentences for items that are not bounces, so every row has a readable "why".
KIND_SENTENCES: dict[str, str] = {
    SupportKind.COMPLAINT: "收件人將此信回報為垃圾郵件",
    SupportKind.REPLY: "申請人回覆了系統通知信,需要客服回應",
    SupportKind.FORWARDED_VERIFICATION: "驗證連結在其他信箱被開啟,驗證信可能被轉寄",
    SupportKind.UNVERIFIED: "帳號已核准,但申請人超過 3 天仍未完成 Email 驗證",
    SupportKind.MAIL_FAILED: "系統多次寄送失敗,已放棄寄送",
    AUTOREPLY: "申請人信箱自動回覆了系統通知信;單獨一封不需處理,連續多封可能表示信箱無人收信",
}

# Whether a reply's From address is proven (mailflow.inbound.sender_auth verdicts), as customer service
# reads it on the item and its list row.
SENDER_AUTH_LABELS: dict[str, str] = {
    "pass": "寄件者已驗證",
    "none": "寄件者未經驗證",
    "fail": "寄件者驗證失敗(可能冒名)",
}
SENDER_AUTH_HELP: dict[str, str] = {
    "pass": "收信伺服器或本系統確認這封信確實由寄件者的網域寄出。",
    "none": "無法證明這封信來自申請人:任何人都能把寄件者填成申請人的 Email。",
    "fail": "這封信的簽章或寄件網域政策驗證失敗,很可能是他人冒用申請人的 Email 寄出。",
}


def sender_auth_label(verdict: str | None) -> str:
    return SENDER_AUTH_LABELS.get(verdict or "none", SENDER_AUTH_LABELS["none"])


def reason_sentence(reason: str | None) -> str:
    """The zh-TW sentence for a Sisimai reason; an unknown or empty reason still gets a sentence."""
    key = (reason or "").strip().lower()
    return REASON_SENTENCES.get(key, UNKNOWN_REASON)


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind)


def item_sentence(kind: str, reason: str | None) -> str:
    """What went wrong with an item, in one sentence: its bounce reason when it has one."""
    if reason:
        return reason_sentence(reason)
    return KIND_SENTENCES.get(kind, UNKNOWN_REASON)


def mail_title(template: str | None) -> str:
    if not template:
        return ""
    return MAIL_TITLES.get(template, template)
