"""A received mail as customer service reads it on /support/items/{id}: the words (the text part, or the
HTML part's text), its attachments, what is wrong with its format (the parser's defects), and the way it
came (the Received chain, first hop first, with the delay at each).

mail-parser does the reading here: it decodes every body and attachment and parses the Received
headers into hops, which is what this page shows. It is too slow for the intake, which reads only the
parts it needs with the standard library (mailflow.inbound.analysis: about 570 mails/s against 2,400),
but one mail per page view costs a few milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import html
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

import mailparser

from mailflow.timeutil import roc_datetime

log = logging.getLogger(__name__)

# Past this the page offers the raw download only: decoding a 50 MB attachment per page view is not worth it.
MAX_PARSED_BYTES = 10 * 1024 * 1024
TEXT_SHOWN = 20_000  # characters of the body on the page; the raw download has the rest

# The standard library's defect classes (email.errors) a support agent may meet, in words; others show
# as 其他格式問題 with the class name in the tooltip.
DEFECTS_ZH = {
    "MissingHeaderBodySeparatorDefect": "標頭與內文之間缺少空行",
    "StartBoundaryNotFoundDefect": "多部分郵件找不到開始的分隔線",
    "CloseBoundaryNotFoundDefect": "多部分郵件缺少結束的分隔線",
    "FirstHeaderLineIsContinuationDefect": "第一行標頭格式錯誤",
    "MisplacedEnvelopeHeaderDefect": "標頭中夾有信封行(From )",
    "MultipartInvariantViolationDefect": "宣告為多部分郵件但沒有分段",
    "InvalidMultipartContentTransferEncodingDefect": "多部分郵件的傳輸編碼不合規定",
    "InvalidBase64PaddingDefect": "Base64 編碼的補齊字元錯誤",
    "InvalidBase64CharactersDefect": "Base64 編碼含有不合法的字元",
    "InvalidBase64LengthDefect": "Base64 編碼的長度錯誤",
    "UndecodableBytesDefect": "含有無法解碼的位元組",
    "NonASCIILocalPartDefect": "地址的 @ 前含有非 ASCII 字元",
    "InvalidHeaderDefect": "標頭格式錯誤",
    "HeaderMissingRequiredValue": "標頭缺少必要的值",
    "ObsoleteHeaderDefect": "使用過時的標頭寫法",
}


@dataclass(frozen=True)
class Hop:
    number: int
    sender: str  # the Received header's "from" part
    receiver: str  # its "by" part
    protocol: str
    at: str  # 民國 date and time in Taipei, or the header's own words when they do not parse
    delay_seconds: float | None


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int  # decoded bytes


@dataclass(frozen=True)
class Defect:
    code: str
    label: str


@dataclass(frozen=True)
class ReceivedView:
    text: str = ""
    text_cut: bool = False
    from_html: bool = False  # the mail had no text part: its words are the HTML part's, without tags
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[Defect] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)
    too_large: bool = False
    unreadable: bool = False


def _html_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>|</tr\s*>", "\n", markup)
    text = html.unescape(re.sub(r"<[^>]*>", " ", markup))
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()


def _size(attachment: dict[str, object]) -> int:
    payload = str(attachment.get("payload") or "")
    if attachment.get("binary"):
        try:
            return len(base64.b64decode(payload))
        except (binascii.Error, ValueError):
            return len(payload) * 3 // 4
    return len(payload.encode("utf-8", errors="replace"))


def _attachment(found: dict[str, object]) -> Attachment:
    return Attachment(str(found.get("filename") or "(未命名)"), str(found.get("mail_content_type") or ""),
                      _size(found))


def _when(hop: dict[str, object]) -> str:
    stamp = str(hop.get("date_utc") or "")
    try:
        return roc_datetime(datetime.fromisoformat(stamp))
    except ValueError:
        return str(hop.get("date") or "")


def _hop(hop: dict[str, object]) -> Hop:
    delay = hop.get("delay")
    return Hop(number=int(str(hop.get("hop") or 0)), sender=str(hop.get("from") or ""),
               receiver=str(hop.get("by") or ""), protocol=str(hop.get("with") or ""), at=_when(hop),
               delay_seconds=float(delay) if isinstance(delay, (int, float)) else None)


def received_view(raw: bytes) -> ReceivedView:
    """What the item page shows of ``raw``; never raises (an unreadable mail says so)."""
    if len(raw) > MAX_PARSED_BYTES:
        return ReceivedView(too_large=True)
    try:
        mail = mailparser.parse_from_bytes(raw)
        plain = "\n\n".join(part for part in mail.text_plain if part.strip())
        from_html = not plain and bool(mail.text_html)
        text = _html_text("\n".join(mail.text_html)) if from_html else plain
        defects = sorted(mail.defects_categories)
        return ReceivedView(
            text=text[:TEXT_SHOWN], text_cut=len(text) > TEXT_SHOWN, from_html=from_html,
            attachments=[_attachment(a) for a in mail.attachments],
            defects=[Defect(code, DEFECTS_ZH.get(code, "其他格式問題")) for code in defects],
            hops=sorted((_hop(h) for h in mail.received), key=lambda h: h.number),
        )
    except Exception as exc:  # a hostile or broken mail must not break the page that helps with it
        log.warning("received mail could not be parsed for the support view: %s", type(exc).__name__)
        return ReceivedView(unreadable=True)
