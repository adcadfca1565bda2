"""Identifier rules of DOMAIN.md §2, as pydantic-ready annotated types.

Each validator raises ``ValueError`` whose message names the rule, so a 422 says why.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import Annotated

import pycountry
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

VIN_ALPHABET = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# ISO 3779 model-year code (position 10); the 30-year cycle repeats from 1980 and 2010.
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}$")

UNLOCODE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
HS_HEADINGS = ("8702", "8703", "8704")


@functools.lru_cache(maxsize=1 << 16)  # every consumer validates the same VINs again
def vin_check_digit(vin: str) -> str:
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def check_digit_mandatory(vin: str) -> bool:
    """China-built (WMI starting L, GB 16735) and North American (WMI 1-5) VINs."""
    return vin[0] == "L" or vin[0] in "12345"


def validate_vin(value: str) -> str:
    vin = value.strip().upper()
    if not VIN_ALPHABET.match(vin):
        raise ValueError("vin_format: 17 characters of A-H, J-N, P, R-Z, 0-9 (no I, O, Q)")
    if check_digit_mandatory(vin) and vin[8] != vin_check_digit(vin):
        raise ValueError(
            f"vin_check_digit: position 9 must be {vin_check_digit(vin)!r} (ISO 3779, GB 16735)"
        )
    return vin


def vin_warnings(vin: str) -> list[str]:
    """Advisory findings that do not refuse a VIN: a wrong check digit, or a position 10 that
    is no year code, outside China and North America, where neither is mandatory."""
    found = []
    if not check_digit_mandatory(vin) and vin[8] != vin_check_digit(vin):
        found.append("vin_check_digit")
    if not year_code_mandatory(vin) and vin[9] not in _YEAR_CODES:
        found.append("vin_year_code")
    return found


def year_code_mandatory(vin: str) -> bool:
    """Position 10 is a model-year code where the check digit is mandatory (China, North
    America); elsewhere (e.g. Europe, ISO 3779 alone) it need not be one."""
    return check_digit_mandatory(vin)


def model_year_mismatch(vin: str, model_year: int) -> bool:
    """Position 10 contradicts ``model_year``; only judged where the code is mandatory."""
    return year_code_mandatory(vin) and model_year not in vin_model_years(vin)


def vin_model_years(vin: str) -> tuple[int, int]:
    """The two model years (30 years apart) that position 10 of a VIN can stand for."""
    index = _YEAR_CODES.find(vin[9])
    if index < 0:
        return (0, 0)
    return (1980 + index, 2010 + index)


@functools.lru_cache(maxsize=1 << 16)
def uscc_check_char(uscc: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(uscc[:17], _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    uscc = value.strip().upper()
    if not _USCC_SHAPE.match(uscc):
        raise ValueError(
            "uscc_format: 18 characters of 0-9 A-H J-N P-R T U W-Y, positions 3-8 digits (GB 32100)"
        )
    if uscc[17] != uscc_check_char(uscc):
        raise ValueError(f"uscc_check_character: position 18 must be {uscc_check_char(uscc)!r}")
    return uscc


def validate_country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError("country_code: an ISO 3166-1 alpha-2 code such as 'KZ'")
    return code


def validate_unlocode(value: str) -> str:
    code = value.strip().upper().replace(" ", "")
    if not UNLOCODE.match(code):
        raise ValueError("unlocode: 5 characters, country + location, such as 'CNSHA'")
    return code


def validate_hs_code(value: str) -> str:
    code = value.strip().replace(".", "")
    if not (code.isdigit() and 4 <= len(code) <= 10 and code[:4] in HS_HEADINGS):
        raise ValueError("hs_code: heading 8702 (buses), 8703 (cars) or 8704 (trucks)")
    return code


def _iso_text(value: object) -> object:
    """Dates and times arrive as ISO 8601 text: pydantic's lax mode would read the number 0 as
    1970-01-01 (schemathesis once created a station accredited until then)."""
    if isinstance(value, int | float):  # bool is an int too
        raise ValueError("iso_8601: a date or time as ISO 8601 text, e.g. '2026-12-02'")
    return value


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Vin = Annotated[str, AfterValidator(validate_vin)]
Uscc = Annotated[str, AfterValidator(validate_uscc)]
CountryCode = Annotated[str, AfterValidator(validate_country)]
UnLocode = Annotated[str, AfterValidator(validate_unlocode)]
HsCode = Annotated[str, AfterValidator(validate_hs_code)]
OpaqueRef = Annotated[
    str,
    BeforeValidator(_strip),
    StringConstraints(min_length=1, max_length=64, pattern=r"^[\x20-\x7E]+$"),
]
"""Licence, declaration, bill-of-lading numbers: 1-64 printable characters, trimmed."""
IsoDate = Annotated[date, BeforeValidator(_iso_text)]
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
"""An aware date-time as ISO 8601 text (a partner's claim: the server's clock bounds it)."""
