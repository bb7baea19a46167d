"""The words a person wrote in a reply, without the quoted history of the mail they answer.

Beside `analysis` (which reads the reply's text out of the mail): `strip_quoted(text)` cuts the text at
the first line that starts the history ("On … wrote:", 「…寫道:」, "-----Original Message-----", an
Outlook 寄件者/From block) and drops ">"-quoted lines; customer service reads the rest on the item.
"""

from __future__ import annotations

import re

_ON_WROTE_RE = re.compile(r"^\s*On\s.*wrote:\s*$", re.I)
_ON_START_RE = re.compile(r"^\s*On\s.*\d", re.I)
_ZH_WROTE_RE = re.compile(r"^.*(?:於|在).*(?:寫道|写道)\s*[:：]\s*$")
_ORIGINAL_RE = re.compile(r"^\s*-{2,}\s*(?:Original Message|原始郵件|原始邮件|Forwarded message)\s*-{2,}",
                          re.I)
_FROM_BLOCK_RE = re.compile(r"^\s*(?:\*\s*)?(?:From|寄件者|发件人)\s*[:：]", re.I)
_HEADER_LINE_RE = re.compile(r"^\s*(?:\*\s*)?(?:Sent|Date|To|Subject|Cc|寄件日期|傳送時間|收件者|主旨|日期|"
                             r"发送时间|收件人|主题)\s*[:：]", re.I)


def strip_quoted(text: str) -> str:
    """What the person wrote: the text above the quoted history of the mail they answer."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _starts_history(lines, i):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    while kept and not kept[-1].strip().strip("_"):
        kept.pop()
    return "\n".join(kept).strip()


def _starts_history(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _ON_WROTE_RE.match(line) or _ZH_WROTE_RE.match(line) or _ORIGINAL_RE.match(line):
        return True
    # "On Mon, 1 Jan 2026 at 10:00, Someone <a@b>\nwrote:" is folded by many clients.
    if _ON_START_RE.match(line) and i + 1 < len(lines) and lines[i + 1].strip().lower().endswith("wrote:"):
        return True
    if _FROM_BLOCK_RE.match(line):
        following = lines[i + 1:i + 5]
        if line.lstrip().startswith(("寄件者", "发件人")):
            return True
        return any(_HEADER_LINE_RE.match(f) for f in following)
    return False
