"""The registration field rules (帳號資料 and 公司資料), each with its own zh-TW message.

Everything an applicant types passes through here before it is stored or put into a mail, so this is
also where hostile input stops: CR/LF and other control characters are refused in every field (they
must never reach a mail header later), and over-long values get a message instead of a database error.
The same rules run in the browser (mailflow/web/static/register.js); the messages and word lists it
uses come from ``browser_rules()`` so the two never disagree on wording.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from mailflow.accounts.phones import AREA_CODES, normalize_office_phone
from mailflow.mail import addresses

Clean = dict[str, str]
Errors = dict[str, str]

ACCOUNT_FIELDS = ("account", "name", "mobile", "email", "password", "password_confirm")
COMPANY_FIELDS = ("ubn", "company_phone", "company_name", "company_address", "company_owner")

# Longest raw value accepted per field, before any rule looks at it.
MAX_LENGTH = {
    "account": 20,
    "name": 30,
    "mobile": 20,
    "email": 254,
    "password": 128,
    "password_confirm": 128,
    "ubn": 10,
    "company_phone": 30,
    "company_name": 100,
    "company_address": 200,
    "company_owner": 30,
}

LABELS = {
    "account": "帳號",
    "name": "姓名",
    "mobile": "手機電話",
    "email": "Email",
    "password": "密碼",
    "password_confirm": "確認密碼",
    "ubn": "公司統編",
    "company_phone": "公司電話",
    "company_name": "公司名稱",
    "company_address": "公司地址",
    "company_owner": "公司負責人",
    "document": "公司證明文件",
}

MESSAGES = {
    "required": "請輸入{label}",
    "control": "{label}不可包含換行或控制字元",
    "too_long": "{label}不可超過{max}個字元",
    "account": "帳號須為4–20個英文字母或數字,並以英文字母開頭",
    "account_taken": "帳號已經存在",
    "name": "姓名須為2–30個字的自然人姓名,不可包含數字或符號",
    "name_company": "姓名須為自然人,不可填寫公司名稱",
    "mobile": "手機電話須為09開頭的10位數字,例如0912345678",
    "email": "Email格式不正確,例如example@gmail.com",
    "email_local_ascii": "Email的@前面只能使用英文字母、數字及 . _ - + 等符號:"
                         "本系統寄出的郵件無法送達含中文等非英文字元的信箱名稱,請改用其他Email",
    "password": "密碼至少8個字元,須包含大寫英文字母、小寫英文字母及數字",
    "password_account": "密碼不可包含帳號",
    "password_confirm": "兩次輸入的密碼不一致",
    "ubn": "公司統編須為8位數字且通過統一編號檢查碼,或10碼機關代碼(數字及大寫英文字母,以英文字母結尾)",
    "ubn_taken": "此統一編號已有帳號,每個統一編號只能申請一個一般帳號",
    "company_phone": ("公司電話須含區碼,例如02-12345678#12345、(07)521-9000或02-2345-6789 轉123;"
                      "也可填手機號碼"),
    "company_phone_length": "區碼{area}的電話號碼須為{lengths}碼(不含區碼及分機)",
    "company_name": "公司名稱須為2–100個字的完整名稱",
    "company_address": "公司地址須為完整地址:可加3、5或6碼郵遞區號,須有縣或市及門牌號碼(號)",
    "company_owner": "公司負責人須為2–30個字的自然人姓名,不可包含數字或符號",
    "company_owner_company": "公司負責人須為自然人,不可填寫公司名稱",
    "document": "請上傳一個公司證明文件(PDF、JPEG或PNG檔)",
    "document_many": "公司證明文件只能上傳一個檔案,多頁文件請合併成一個檔案",
    "document_type": "公司證明文件須為PDF、JPEG或PNG檔(依檔案內容判斷)",
    "document_too_large": "公司證明文件不可超過{size}",
    "document_storage": "伺服器暫時無法儲存文件,請稍後再試",
}

# Words that make a "name" a company rather than a natural person.
COMPANY_WORDS_ZH = (
    "公司", "股份", "有限", "企業", "行號", "商行", "商號", "工作室", "事務所", "工廠", "集團",
    "協會", "基金會", "合作社", "實業", "機構",
)
COMPANY_WORDS_EN = ("co", "ltd", "inc", "corp", "llc", "plc", "gmbh", "company", "limited", "corporation",
                    "enterprise", "enterprises")

ACCOUNT_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{3,19}")
MOBILE_RE = re.compile(r"09[0-9]{8}")
AGENCY_CODE_RE = re.compile(r"[0-9A-Z]{9}[A-Z]")
# Besides letters of any script, a person's name may hold the separators of transliterated names.
NAME_SEPARATORS = frozenset(" ·‧・.-'")
# Optional 3/5/6-digit postal code, optionally the country (臺灣, 台灣, 臺灣省, 中華民國臺灣: 台 and 臺
# alike, before or after the code), a 縣 or 市, then somewhere a house number (10號, 10-1號, 10之1號).
_COUNTRY_WORDS = r"(?:(?:中華民國)?[台臺]灣省?[ \u3000]*)?"
ADDRESS_RE = re.compile(
    rf"{_COUNTRY_WORDS}(?:[0-9]{{3}}|[0-9]{{5}}|[0-9]{{6}})?[ \u3000]*{_COUNTRY_WORDS}"
    r"[\u3400-\u9fff]{2,3}[縣市].*?[0-9]+(?:[-之][0-9]+)?號.*"
)
# Explicit letter lookarounds rather than \b, which differs between Python and JavaScript for CJK text.
COMPANY_EN_RE = re.compile(r"(?<![A-Za-z])(?:" + "|".join(COMPANY_WORDS_EN) + r")(?![A-Za-z])", re.IGNORECASE)
UBN_WEIGHTS = (1, 2, 1, 2, 1, 2, 4, 1)

_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)})
_FULLWIDTH_PHONE = str.maketrans({"－": "-", "＃": "#", "　": " ", "‐": "-", "–": "-"})


def message(key: str, **values: Any) -> str:
    return MESSAGES[key].format(**values)


def halfwidth_digits(value: str) -> str:
    """Full-width digits (０–９, as Chinese input methods type them) as ASCII digits."""
    return value.translate(_FULLWIDTH)


def has_control_characters(value: str) -> bool:
    """CR, LF, TAB, NUL, DEL, line separators, bidi overrides and other invisible format characters."""
    return any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"} for ch in value)


def ubn_checksum_ok(digits: str) -> bool:
    """The 統一編號 check: weights 1,2,1,2,1,2,4,1, add the digits of each product; valid when the sum is
    divisible by 5 (in force since 2023; it includes every number the old divisible-by-10 rule accepted),
    and when the 7th digit is 7 also when the sum plus 1 is (4×7=28 → 10 may count as 1 or 0)."""
    if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
        return False
    total = sum(sum(divmod(int(d) * w, 10)) for d, w in zip(digits, UBN_WEIGHTS, strict=True))
    if total % 5 == 0:
        return True
    return digits[6] == "7" and (total + 1) % 5 == 0


def is_valid_ubn(value: str) -> bool:
    """An 8-digit unified business number, or a government agency's 10-character code."""
    return ubn_checksum_ok(value) or AGENCY_CODE_RE.fullmatch(value) is not None


def looks_like_company(value: str) -> bool:
    return any(word in value for word in COMPANY_WORDS_ZH) or COMPANY_EN_RE.search(value) is not None


def is_person_name(value: str) -> bool:
    """2+ characters, letters (any script) and name separators only, starting with a letter."""
    return (len(value) >= 2 and value[0].isalpha()
            and all(ch.isalpha() or ch in NAME_SEPARATORS for ch in value))


def _person_error(value: str, field: str) -> str | None:
    if not is_person_name(value):
        return message(field)
    if looks_like_company(value):
        return message(f"{field}_company")
    return None


def _check_account(value: str) -> tuple[str, str | None]:
    return value, None if ACCOUNT_RE.fullmatch(value) else message("account")


def _check_name(value: str) -> tuple[str, str | None]:
    return value, _person_error(value, "name")


def _check_owner(value: str) -> tuple[str, str | None]:
    return value, _person_error(value, "company_owner")


def _check_mobile(value: str) -> tuple[str, str | None]:
    digits = re.sub(r"[ \-]", "", halfwidth_digits(value).translate(_FULLWIDTH_PHONE))
    return (digits, None) if MOBILE_RE.fullmatch(digits) else (value, message("mobile"))


def _check_email(value: str) -> tuple[str, str | None]:
    """The address in its one stored form (mailflow.mail.addresses: IDNA ASCII domain, full-width typed
    characters read as ASCII); a non-ASCII name before the @ is refused with its own reason."""
    try:
        return addresses.normalize(value), None
    except addresses.AddressRefused as refused:
        return value, message(refused.reason)


def _check_password(value: str) -> tuple[str, str | None]:
    strong = (len(value) >= 8 and re.search(r"[A-Z]", value) and re.search(r"[a-z]", value)
              and re.search(r"[0-9]", value))
    return value, None if strong else message("password")


def _check_ubn(value: str) -> tuple[str, str | None]:
    code = re.sub(r" ", "", halfwidth_digits(value).translate(_FULLWIDTH_PHONE))
    return (code, None) if is_valid_ubn(code) else (value, message("ubn"))


def _check_phone(value: str) -> tuple[str, str | None]:
    phone = normalize_office_phone(value)
    if isinstance(phone, str):
        return phone, None
    if phone.kind == "length":
        lengths = "或".join(str(n) for n in phone.lengths)
        return value, message("company_phone_length", area=phone.area, lengths=lengths)
    return value, message("company_phone")


def _check_company_name(value: str) -> tuple[str, str | None]:
    return value, None if len(value) >= 2 else message("company_name")


def _check_address(value: str) -> tuple[str, str | None]:
    address = halfwidth_digits(value)
    return (address, None) if ADDRESS_RE.fullmatch(address) else (value, message("company_address"))


FIELD_CHECKS: dict[str, Callable[[str], tuple[str, str | None]]] = {
    "account": _check_account,
    "name": _check_name,
    "mobile": _check_mobile,
    "email": _check_email,
    "password": _check_password,
    "password_confirm": lambda value: (value, None),  # compared with the password below
    "ubn": _check_ubn,
    "company_phone": _check_phone,
    "company_name": _check_company_name,
    "company_address": _check_address,
    "company_owner": _check_owner,
}

# Passwords keep their spaces: trimming would silently change a secret.
UNTRIMMED = {"password", "password_confirm"}


def check_field(field: str, raw: Any) -> tuple[str, str | None]:
    """One field: required, no control characters, not over-long, then its own rule.
    Returns the cleaned value and the error message (None when valid)."""
    label = LABELS[field]
    value = raw if isinstance(raw, str) else ""
    if field not in UNTRIMMED:
        value = value.strip(" \u3000")
    if value == "":
        return "", message("required", label=label)
    if has_control_characters(value):
        return "", message("control", label=label)
    if len(value) > MAX_LENGTH[field]:
        return "", message("too_long", label=label, max=MAX_LENGTH[field])
    return FIELD_CHECKS[field](value)


def _validate(fields: tuple[str, ...], data: Mapping[str, Any]) -> tuple[Clean, Errors]:
    clean: Clean = {}
    errors: Errors = {}
    for field in fields:
        value, error = check_field(field, data.get(field))
        if error:
            errors[field] = error
        else:
            clean[field] = value
    return clean, errors


def validate_account_fields(data: Mapping[str, Any]) -> tuple[Clean, Errors]:
    """帳號資料: account, name, mobile, email, password, password_confirm (every error at once)."""
    clean, errors = _validate(ACCOUNT_FIELDS, data)
    _check_password_pair(clean, errors, clean.get("account"), data.get("password"))
    return clean, errors


def _check_password_pair(clean: Clean, errors: Errors, account: str | None, typed: Any) -> None:
    """The rules a password has beside its own: it may not contain the 帳號, and 確認密碼 must repeat it."""
    password = clean.get("password")
    if password and account and account.lower() in password.lower():
        errors["password"] = message("password_account")
        del clean["password"]
    if "password_confirm" in clean and clean["password_confirm"] != (typed or ""):
        errors["password_confirm"] = message("password_confirm")
        del clean["password_confirm"]


def new_password_errors(account: str, password: Any, confirm: Any) -> Errors:
    """A new password for ``account`` (a reset, a change) by the registration's rules: its strength, not
    containing the 帳號, and 確認密碼 the same. Field names are the registration's."""
    clean, errors = _validate(("password", "password_confirm"), {"password": password,
                                                                 "password_confirm": confirm})
    _check_password_pair(clean, errors, account, password)
    return errors


def validate_company_fields(data: Mapping[str, Any]) -> tuple[Clean, Errors]:
    """公司資料: ubn, company_phone, company_name, company_address, company_owner (every error at once)."""
    return _validate(COMPANY_FIELDS, data)


def browser_rules(max_document_bytes: int) -> dict[str, Any]:
    """What register.js needs to apply the same rules with the same words."""
    return {
        "messages": MESSAGES,
        "labels": LABELS,
        "maxLength": MAX_LENGTH,
        "companyWordsZh": list(COMPANY_WORDS_ZH),
        "companyWordsEn": list(COMPANY_WORDS_EN),
        "areaCodes": AREA_CODES,
        "maxDocumentBytes": max_document_bytes,
        "maxDocumentSize": document_limit_text(max_document_bytes),
    }


def document_limit_text(max_document_bytes: int) -> str:
    """The size limit as people read it: '10 MB', '1.5 MB', '2 KB'."""
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if max_document_bytes >= size:
            amount = max_document_bytes / size
            return f"{amount:.0f} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{max_document_bytes} bytes"
