"""Office phones as clerks type them (issue 15 item 2): every way of writing one number reads as the same
stored form, the area code decides how many digits follow it, and 台/臺 anywhere in an address is the same
address. Property tests (hypothesis) write each generated number in random clerk styles."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mailflow.accounts.phones import AREA_CODES, PhoneProblem, normalize_office_phone
from mailflow.accounts.rules import check_field


@pytest.mark.parametrize(("typed", "stored"), [
    ("(02)2345-6789#123", "02-23456789#123"),
    ("(02)23456789", "02-23456789"),
    ("02-2345-6789", "02-23456789"),
    ("0223456789", "02-23456789"),
    ("02 2345 6789", "02-23456789"),
    ("(07)521-9000", "07-5219000"),
    ("02-23456789 轉123", "02-23456789#123"),
    ("02-2345-6789 分機 45", "02-23456789#45"),
    ("02-2345-6789 ext. 7", "02-23456789#7"),
    ("02-2345-6789 EXT 7", "02-23456789#7"),
    ("02-2345-6789x88", "02-23456789#88"),
    ("+886-2-2345-6789", "02-23456789"),
    ("+886 (0)7 521 9000", "07-5219000"),
    ("（０２）２３４５－６７８９＃１２３", "02-23456789#123"),
    ("037-123456", "037-123456"),
    ("(049)222-2106", "049-2222106"),
    ("04-2222-3333", "04-22223333"),
    ("04-722-1234", "04-7221234"),
    ("082-318823", "082-318823"),
    ("0836-22381", "0836-22381"),
    ("089-326141", "089-326141"),
    ("0800-088-568", "0800-088568"),
    ("0912-345-678", "0912345678"),
    ("02-12345678#12345", "02-12345678#12345"),  # the seed's own example
])
def test_the_ways_clerks_write_a_number(typed: str, stored: str) -> None:
    assert normalize_office_phone(typed) == stored
    assert check_field("company_phone", typed) == (stored, None)
    assert normalize_office_phone(stored) == stored  # the stored form reads as itself


AREAS = sorted(AREA_CODES)


def longest_area(digits: str) -> str | None:
    """The area code of a digit string, worked out here independently of the code under test."""
    for code in sorted(AREA_CODES, key=len, reverse=True):
        if digits.startswith(code):
            return code
    return None


@st.composite
def office_numbers(draw: st.DrawFn, lengths_ok: bool = True) -> tuple[str, str, str, str]:
    """(area, subscriber, extension, typed): one number written the way a clerk might."""
    area = draw(st.sampled_from(AREAS))
    allowed = AREA_CODES[area]
    if lengths_ok:
        length = draw(st.sampled_from(allowed))
    else:
        length = draw(st.integers(1, 10).filter(lambda n: n not in allowed))
    subscriber = draw(st.text("0123456789", min_size=length, max_size=length))
    assume(longest_area(area + subscriber) == area)  # 08 + 2… is 082, a different area
    extension = draw(st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=6)))
    cut = draw(st.integers(0, len(subscriber)))
    body = subscriber if draw(st.booleans()) else f"{subscriber[:cut]}{draw(st.sampled_from(['-', ' ']))}" \
        f"{subscriber[cut:]}".strip(" -")
    style = draw(st.sampled_from(["({a}){b}", "({a}) {b}", "{a}-{b}", "{a} {b}", "{a}{b}", "+886-{c}-{b}",
                                  "+886 (0){c} {b}"]))
    typed = style.format(a=area, b=body, c=area[1:])
    if extension:
        marker = draw(st.sampled_from(["#", " #", "轉", " 轉", " 分機 ", "ext", " ext. ", " EXT ", "x"]))
        typed += marker + extension
    if draw(st.booleans()):  # typed with a Chinese input method: full-width digits and punctuation
        typed = typed.translate(str.maketrans("0123456789-#()", "０１２３４５６７８９－＃（）"))
    return area, subscriber, extension, typed


@given(office_numbers())
def test_any_style_of_a_valid_number_stores_one_form(number: tuple[str, str, str, str]) -> None:
    area, subscriber, extension, typed = number
    expected = f"{area}-{subscriber}" + (f"#{extension}" if extension else "")
    assert normalize_office_phone(typed) == expected
    assert normalize_office_phone(expected) == expected


@given(office_numbers(lengths_ok=False))
def test_a_subscriber_number_of_the_wrong_length_names_its_area(number: tuple[str, str, str, str]) -> None:
    area, subscriber, _, typed = number
    problem = normalize_office_phone(typed)
    assume(not (area + subscriber).startswith("09"))  # 09… is a mobile number, checked on its own
    assert problem == PhoneProblem("length", area, AREA_CODES[area])


@given(st.text(max_size=30))
def test_anything_else_is_refused_or_read_as_a_real_number(text: str) -> None:
    read = normalize_office_phone(text)
    if isinstance(read, str):  # then it is a number of a known area with the right length
        digits = read.split("#")[0].replace("-", "")
        if digits.startswith("09"):
            assert len(digits) == 10 and "#" not in read
        else:
            area, subscriber = read.split("#")[0].split("-")
            assert longest_area(digits) == area and len(subscriber) in AREA_CODES[area]


@given(st.text("0123456789", min_size=8, max_size=8).map(lambda rest: "09" + rest))
def test_a_mobile_number_is_stored_as_its_ten_digits(digits: str) -> None:
    assert normalize_office_phone(f"{digits[:4]}-{digits[4:7]}-{digits[7:]}") == digits
    assert isinstance(normalize_office_phone(digits + "#12"), PhoneProblem)  # a mobile has no extension


ADDRESSES = ["台灣台北市中正區北平西路3號", "804004台灣高雄市鼓山區蓬萊路10號", "台中市梧棲區台灣大道十段2號",
             "台東縣台東市中華路一段2號", "中華民國台灣省台南市安平區新港路1號"]


@pytest.mark.parametrize("address", ADDRESSES)
def test_tai_and_tai_are_the_same_anywhere_in_an_address(address: str) -> None:
    positions = [i for i, ch in enumerate(address) if ch == "台"]
    for choice in itertools.product("台臺", repeat=len(positions)):
        typed = list(address)
        for position, character in zip(positions, choice, strict=True):
            typed[position] = character
        written = "".join(typed)
        assert check_field("company_address", written) == (written, None)  # kept as the clerk wrote it
