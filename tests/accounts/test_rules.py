"""The registration field rules, each with valid and invalid examples (no database needed)."""

from __future__ import annotations

import pytest

from mailflow.accounts.rules import (
    COMPANY_FIELDS,
    LABELS,
    MAX_LENGTH,
    MESSAGES,
    check_field,
    message,
    ubn_checksum_ok,
    validate_account_fields,
    validate_company_fields,
)

VALID_ACCOUNT = {
    "account": "example1234", "name": "王小明", "mobile": "0912345678", "email": "example@gmail.com",
    "password": "Harbour2024", "password_confirm": "Harbour2024",
}
VALID_COMPANY = {
    "ubn": "04595257", "company_phone": "02-12345678#12345", "company_name": "臺灣港務股份有限公司基隆分公司",
    "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "陳大文",
}


def ubn_sum(digits: str) -> int:
    """The weighted digit sum, computed independently of the code under test."""
    total = 0
    for digit, weight in zip(digits, (1, 2, 1, 2, 1, 2, 4, 1), strict=True):
        product = int(digit) * weight
        total += product // 10 + product % 10
    return total


def account_error(field: str, value: str, **others: str) -> str | None:
    clean, errors = validate_account_fields({**VALID_ACCOUNT, field: value, **others})
    return errors.get(field)


def company_error(field: str, value: str) -> str | None:
    return validate_company_fields({**VALID_COMPANY, field: value})[1].get(field)


def test_the_seed_examples_pass_every_rule() -> None:
    assert validate_account_fields(VALID_ACCOUNT) == (VALID_ACCOUNT, {})
    assert validate_company_fields(VALID_COMPANY) == (VALID_COMPANY, {})


def test_every_bad_field_is_named_at_once() -> None:
    _, account_errors = validate_account_fields({})
    _, company_errors = validate_company_fields({})
    assert set(account_errors) == set(VALID_ACCOUNT)
    assert set(company_errors) == set(COMPANY_FIELDS)
    assert account_errors["account"] == "請輸入帳號"
    assert company_errors["ubn"] == "請輸入公司統編"


def test_every_rule_has_its_own_message() -> None:
    assert len(set(MESSAGES.values())) == len(MESSAGES)


@pytest.mark.parametrize("value", ["example1234", "abcd", "A" + "b1" * 9 + "c", "Port2024"])
def test_account_valid(value: str) -> None:
    password = "Xx9" + "q" * 30
    assert account_error("account", value, password=password, password_confirm=password) is None


@pytest.mark.parametrize("value", ["1abc", "abc", "ab_cd", "ab cd", "帳號abcd", "ab-cd", "abc!"])
def test_account_invalid(value: str) -> None:
    assert account_error("account", value) == message("account")


def test_account_over_20_characters_is_too_long() -> None:
    assert account_error("account", "a" * 21) == "帳號不可超過20個字元"


@pytest.mark.parametrize("value", ["王小明", "John Smith", "歐陽·娜娜", "Mary-Jane O'Neil", "Coco Lee"])
def test_name_valid(value: str) -> None:
    assert account_error("name", value) is None


@pytest.mark.parametrize("value", ["王1明", "王小明１", "A", "@@", "小明!", "-小明"])
def test_name_invalid(value: str) -> None:
    assert account_error("name", value) == message("name")


@pytest.mark.parametrize("value", ["王小明有限公司", "大明工作室", "台灣股份", "ABC Co. Ltd", "Acme Inc",
                                   "Foo CORP", "小明企業", "林記商行", "陳氏事務所"])
def test_name_must_not_be_a_company(value: str) -> None:
    assert account_error("name", value) == "姓名須為自然人,不可填寫公司名稱"


@pytest.mark.parametrize("value", ["0912345678", "0912-345-678", "0912 345 678", "０９１２３４５６７８",
                                   "0912－345678"])
def test_mobile_valid_and_stored_normalised(value: str) -> None:
    clean, errors = validate_account_fields({**VALID_ACCOUNT, "mobile": value})
    assert "mobile" not in errors
    assert clean["mobile"] == "0912345678"


@pytest.mark.parametrize("value", ["0812345678", "091234567", "09123456789", "+886912345678", "09-abcdefgh",
                                   "09١٢٣٤٥٦٧٨"])
def test_mobile_invalid(value: str) -> None:
    assert account_error("mobile", value) == message("mobile")


@pytest.mark.parametrize(("value", "stored"), [("example@gmail.com", "example@gmail.com"),
                                               ("Some.One@Example.COM", "Some.One@example.com"),
                                               ("a+tag@twport.com.tw", "a+tag@twport.com.tw")])
def test_email_valid_and_stored_in_normal_form(value: str, stored: str) -> None:
    # The name before the @ as typed, the domain lower-cased (see mailflow.mail.addresses).
    clean, errors = validate_account_fields({**VALID_ACCOUNT, "email": value})
    assert "email" not in errors
    assert clean["email"] == stored


@pytest.mark.parametrize("value", ["example", "a@b", "a@@b.com", "a b@c.com", "a@.com", "a..b@c.com",
                                   "=?utf-8?q?x?=@c.com"])
def test_email_invalid(value: str) -> None:
    assert account_error("email", value) == message("email")


def test_email_with_a_chinese_name_before_the_at_says_why() -> None:
    assert account_error("email", "王@example.com") == message("email_local_ascii")


@pytest.mark.parametrize("value", ["Harbour2024", "aB3aaaaa", "Xy9 with spaces"])
def test_password_valid(value: str) -> None:
    assert account_error("password", value, password_confirm=value) is None


@pytest.mark.parametrize("value", ["Short1A", "alllowercase1", "ALLUPPER123", "NoDigitsHere",
                                   "１２３４Abcdef"])
def test_password_invalid(value: str) -> None:
    assert account_error("password", value, password_confirm=value) == message("password")


@pytest.mark.parametrize("value", ["xEXAMPLE1234y", "Example1234", "my-example1234-Pass"])
def test_password_must_not_contain_the_account_id(value: str) -> None:
    assert account_error("password", value, password_confirm=value) == "密碼不可包含帳號"


def test_password_confirm_must_equal_the_password() -> None:
    assert account_error("password_confirm", "Harbour2025") == "兩次輸入的密碼不一致"
    assert account_error("password_confirm", "") == "請輸入確認密碼"
    # A confirmation that merely differs by a trailing space is a different password.
    assert account_error("password_confirm", "Harbour2024 ") == "兩次輸入的密碼不一致"


# 統一編號 examples, computed: valid under the old divisible-by-10 rule; valid ONLY under the
# divisible-by-5 rule (in force since 2023); 7th digit 7 valid only because sum + 1 is divisible by 5.
UBN_MOD10 = ["04595257", "10000021", "22099131"]
UBN_MOD5_ONLY = ["10000308", "10000399", "10000378"]
UBN_SEVEN_PLUS_ONE = ["12345675", "10458574", "10002478"]
UBN_INVALID = ["12345678", "10000070", "10000077", "00000001", "1234567", "123456789", "1234567A"]


def test_the_ubn_examples_are_what_they_claim() -> None:
    assert all(ubn_sum(n) % 10 == 0 for n in UBN_MOD10)
    assert all(ubn_sum(n) % 5 == 0 and ubn_sum(n) % 10 != 0 for n in UBN_MOD5_ONLY)
    assert all(n[6] == "7" and ubn_sum(n) % 5 != 0 and (ubn_sum(n) + 1) % 5 == 0 for n in UBN_SEVEN_PLUS_ONE)


@pytest.mark.parametrize("value", UBN_MOD10 + UBN_MOD5_ONLY + UBN_SEVEN_PLUS_ONE)
def test_ubn_checksum_valid(value: str) -> None:
    assert ubn_checksum_ok(value)
    assert company_error("ubn", value) is None


@pytest.mark.parametrize("value", UBN_INVALID)
def test_ubn_checksum_invalid(value: str) -> None:
    assert company_error("ubn", value) == message("ubn")


def test_the_sum_plus_one_rule_needs_a_seventh_digit_of_7() -> None:
    # Numbers whose sum is one short of a multiple of 5 are valid only when the 7th digit is 7.
    candidates = [f"{n:08d}" for n in range(10000000, 10001000)]
    plus_one_only = [n for n in candidates if ubn_sum(n) % 5 == 4]
    assert any(n[6] != "7" for n in plus_one_only)
    for number in plus_one_only:
        assert ubn_checksum_ok(number) == (number[6] == "7")


@pytest.mark.parametrize("value", ["376000000A", "A00000000Z", "000000000B"])
def test_agency_code_valid(value: str) -> None:
    assert company_error("ubn", value) is None


@pytest.mark.parametrize("value", ["a76000000A", "3760000001", "37600000A", "376000000a", "376-00000A"])
def test_agency_code_invalid(value: str) -> None:
    assert company_error("ubn", value) == message("ubn")


def test_ubn_tolerates_full_width_digits() -> None:
    clean, errors = validate_company_fields({**VALID_COMPANY, "ubn": "１００００３０８"})
    assert errors == {}
    assert clean["ubn"] == "10000308"


@pytest.mark.parametrize(("value", "stored"), [
    ("02-12345678#12345", "02-12345678#12345"), ("07-5219000", "07-5219000"), ("049-2345678", "049-2345678"),
    ("0826-12345", "0826-12345"), ("０２－１２３４５６７８＃１２", "02-12345678#12"),
    ("0212345678", "02-12345678"), ("(02)12345678", "02-12345678"), ("02-1234-5678", "02-12345678"),
])
def test_company_phone_valid(value: str, stored: str) -> None:
    clean, errors = validate_company_fields({**VALID_COMPANY, "company_phone": value})
    assert errors == {}
    assert clean["company_phone"] == stored


@pytest.mark.parametrize("value", ["2-12345678", "02-12345678#", "02-12345678#1234567", "12345678",
                                   "02-12345678、02-12345679", "(02)(2345)6789", "02-2345-6789 轉", "phone"])
def test_company_phone_invalid(value: str) -> None:
    assert company_error("company_phone", value) == message("company_phone")


@pytest.mark.parametrize(("value", "area", "lengths"), [
    ("02-123", "02", "8"), ("02-123456789", "02", "8"), ("04-123456", "04", "7或8"),
    ("0826-1234", "0826", "5"),
])
def test_a_wrong_length_names_the_area_and_its_length(value: str, area: str, lengths: str) -> None:
    expected = message("company_phone_length", area=area, lengths=lengths)
    assert company_error("company_phone", value) == expected


@pytest.mark.parametrize("value", ["臺灣港務股份有限公司基隆分公司", "港務", "A" * 100])
def test_company_name_valid(value: str) -> None:
    assert company_error("company_name", value) is None


def test_company_name_invalid() -> None:
    assert company_error("company_name", "港") == message("company_name")
    assert company_error("company_name", "港" * 101) == "公司名稱不可超過100個字元"


@pytest.mark.parametrize(("value", "stored"), [
    ("804004高雄市鼓山區蓬萊路10號", "804004高雄市鼓山區蓬萊路10號"),
    ("80401高雄市鼓山區蓬萊路10之1號", "80401高雄市鼓山區蓬萊路10之1號"),
    ("202基隆市中正區港西街7號", "202基隆市中正區港西街7號"),
    ("新竹縣竹北市光明六路10-2號3樓", "新竹縣竹北市光明六路10-2號3樓"),
    ("８０４００４高雄市鼓山區蓬萊路１０號", "804004高雄市鼓山區蓬萊路10號"),
    ("台灣台北市中正區忠孝西路一段1號", "台灣台北市中正區忠孝西路一段1號"),
    ("臺灣臺北市中正區忠孝西路一段1號", "臺灣臺北市中正區忠孝西路一段1號"),
    ("100臺灣台北市中正區忠孝西路一段1號", "100臺灣台北市中正區忠孝西路一段1號"),
    ("中華民國臺灣省臺中市梧棲區臨港路四段1號", "中華民國臺灣省臺中市梧棲區臨港路四段1號"),
])
def test_company_address_valid_and_digits_normalised(value: str, stored: str) -> None:
    clean, errors = validate_company_fields({**VALID_COMPANY, "company_address": value})
    assert errors == {}
    assert clean["company_address"] == stored


@pytest.mark.parametrize("value", ["高雄市鼓山區蓬萊路", "鼓山區蓬萊路10號", "8040高雄市鼓山區蓬萊路10號",
                                   "1234567高雄市鼓山區蓬萊路10號", "高雄市鼓山區蓬萊路十號", "Kaohsiung 10"])
def test_company_address_invalid(value: str) -> None:
    assert company_error("company_address", value) == message("company_address")


def test_company_owner_follows_the_name_rule_and_may_equal_the_name() -> None:
    assert company_error("company_owner", "王小明") is None
    assert company_error("company_owner", "王1明") == message("company_owner")
    assert company_error("company_owner", "王小明有限公司") == "公司負責人須為自然人,不可填寫公司名稱"


@pytest.mark.parametrize("field", list(MAX_LENGTH))
@pytest.mark.parametrize("hostile", ["\r\n", "\n", "\r", "\x00", "\t", "\x7f", "\u2028", "\u202e", "\x1b"])
def test_control_characters_are_refused_in_every_field(field: str, hostile: str) -> None:
    good = {**VALID_ACCOUNT, **VALID_COMPANY}[field]
    value, error = check_field(field, good[:2] + hostile + good[2:])
    assert error == f"{LABELS[field]}不可包含換行或控制字元"
    assert value == ""


@pytest.mark.parametrize("field", list(MAX_LENGTH))
def test_over_long_values_get_a_message(field: str) -> None:
    _, error = check_field(field, "a" * 10_000)
    assert error == f"{LABELS[field]}不可超過{MAX_LENGTH[field]}個字元"


@pytest.mark.parametrize("raw", [None, 12345, b"bytes", ["list"]])
def test_non_text_values_count_as_missing(raw: object) -> None:
    assert check_field("name", raw) == ("", "請輸入姓名")


def test_surrounding_spaces_are_trimmed_except_in_passwords() -> None:
    assert check_field("name", "  王小明\u3000") == ("王小明", None)
    assert check_field("password", " Harbour2024 ") == (" Harbour2024 ", None)
